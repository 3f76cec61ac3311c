//===- RegexCompiler.cpp - Split patterns: parser and code generation ----===//
//
// Parses a pattern into a small AST and emits the backtracking program that
// Regex.cpp runs. Constructs outside the supported subset fail here with
// the offset, never at match time.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/Regex.h"

namespace m2c::tokenizer {

using unicode::CategoryMask;

namespace {

constexpr uint32_t kInf = Regex::kUnbounded;

struct Node {
  enum Kind { Empty, Char, Class, Any, Concat, Alt, Repeat, Look, Assert } kind = Empty;
  char32_t c = 0;
  bool fold = false;
  uint32_t cls = 0;
  std::vector<Node> kids;
  uint32_t min = 0, max = 0;
  uint8_t mode = Regex::kGreedy;
  bool negate = false;
  Regex::Op assertOp = Regex::Op::Match;

  bool isSingle() const { return kind == Char || kind == Class || kind == Any; }
  bool canBeEmpty() const {
    switch (kind) {
    case Empty:
    case Look:
    case Assert:
      return true;
    case Char:
    case Class:
    case Any:
      return false;
    case Concat:
      for (const Node &k : kids)
        if (!k.canBeEmpty())
          return false;
      return true;
    case Alt:
      for (const Node &k : kids)
        if (k.canBeEmpty())
          return true;
      return false;
    case Repeat:
      return min == 0 || kids[0].canBeEmpty();
    }
    return true;
  }
};


} // namespace

class RegexCompiler {
public:
  RegexCompiler(std::string_view pattern, Regex &re) : re_(re) {
    for (size_t pos = 0; pos < pattern.size();)
      pat_.push_back(unicode::decodeUtf8(pattern, pos));
  }

  Status compile() {
    Node root = parseAlt();
    if (!failed_ && i_ < pat_.size())
      fail("unbalanced ')'");
    if (failed_)
      return status_;
    emit(root);
    re_.program_.push_back({Regex::Op::Match});
    // Look-ahead bodies go after the main program, each ending in Match.
    for (size_t k = 0; k < looks_.size(); ++k) {
      re_.program_[looks_[k].first].x = static_cast<uint32_t>(re_.program_.size());
      emit(*looks_[k].second);
      re_.program_.push_back({Regex::Op::Match});
    }
    if (failed_)
      return status_;
    for (Regex::CharClass &cls : re_.classes_)
      for (char32_t cp = 0; cp < 128; ++cp)
        cls.ascii.set(cp, cls.matchesSlow(cp, unicode::category(cp)));
    return Status::ok();
  }

private:
  void fail(const std::string &why) {
    if (failed_)
      return;
    failed_ = true;
    status_ = Status::error(why + " at offset " + std::to_string(i_));
  }
  bool atEnd() const { return i_ >= pat_.size(); }
  char32_t peek(size_t ahead = 0) const {
    return i_ + ahead < pat_.size() ? pat_[i_ + ahead] : 0;
  }

  Node parseAlt() {
    Node alt;
    alt.kind = Node::Alt;
    alt.kids.push_back(parseSeq());
    while (!failed_ && !atEnd() && peek() == '|') {
      ++i_;
      alt.kids.push_back(parseSeq());
    }
    if (alt.kids.size() == 1)
      return std::move(alt.kids[0]);
    return alt;
  }

  Node parseSeq() {
    Node seq;
    seq.kind = Node::Concat;
    while (!failed_ && !atEnd() && peek() != '|' && peek() != ')') {
      Node atom = parseAtom();
      if (failed_)
        break;
      parseQuantifier(atom);
      seq.kids.push_back(std::move(atom));
    }
    if (seq.kids.size() == 1)
      return std::move(seq.kids[0]);
    return seq;
  }

  bool parseCount(uint32_t &value) {
    if (atEnd() || peek() < '0' || peek() > '9')
      return false;
    uint64_t v = 0;
    while (!atEnd() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > 100000) {
        fail("repeat count too large");
        return false;
      }
      ++i_;
    }
    value = static_cast<uint32_t>(v);
    return true;
  }

  // {m}, {m,}, {m,n}, {,n}; anything else leaves the '{' a literal.
  bool tryBraces(uint32_t &min, uint32_t &max) {
    size_t save = i_;
    ++i_; // '{'
    uint32_t lo = 0, hi = 0;
    bool haveLo = parseCount(lo);
    if (!atEnd() && peek() == '}' && haveLo) {
      ++i_;
      min = max = lo;
      return true;
    }
    if (!atEnd() && peek() == ',') {
      ++i_;
      bool haveHi = parseCount(hi);
      if (!atEnd() && peek() == '}' && (haveLo || haveHi)) {
        ++i_;
        min = haveLo ? lo : 0;
        max = haveHi ? hi : kInf;
        if (max < min)
          fail("repeat range {" + std::to_string(min) + "," + std::to_string(max) +
               "} is backwards");
        return true;
      }
    }
    i_ = save;
    return false;
  }

  void parseQuantifier(Node &atom) {
    uint32_t min, max;
    char32_t c = peek();
    if (atEnd())
      return;
    if (c == '?' || c == '*' || c == '+') {
      ++i_;
      min = c == '+' ? 1 : 0;
      max = c == '?' ? 1 : kInf;
    } else if (c == '{') {
      if (!tryBraces(min, max))
        return;
    } else {
      return;
    }
    uint8_t mode = Regex::kGreedy;
    if (!atEnd() && peek() == '?') {
      ++i_;
      mode = Regex::kLazy;
    } else if (!atEnd() && peek() == '+') {
      if (c == '{') {
        fail("'+' after a {m,n} repeat is unsupported");
        return;
      }
      ++i_;
      mode = Regex::kPossessive;
    }
    if (!atEnd() && (peek() == '?' || peek() == '*' || peek() == '+')) {
      fail("nested quantifier");
      return;
    }
    if (atom.kind == Node::Look || atom.kind == Node::Assert) {
      fail("quantifier on an assertion");
      return;
    }
    if (!atom.isSingle() && mode == Regex::kPossessive) {
      fail("possessive repeat of a group is unsupported");
      return;
    }
    if (!atom.isSingle() && max == kInf && atom.canBeEmpty()) {
      fail("unbounded repeat of a group that can match empty is unsupported");
      return;
    }
    Node rep;
    rep.kind = Node::Repeat;
    rep.min = min;
    rep.max = max;
    rep.mode = mode;
    rep.kids.push_back(std::move(atom));
    atom = std::move(rep);
  }

  Node makeClassNode(Regex::ClassItem item) {
    Regex::CharClass cls;
    cls.items.push_back(item);
    return addClass(std::move(cls));
  }

  Node addClass(Regex::CharClass cls) {
    if (fold_)
      fail("character classes inside (?i) are unsupported");
    Node node;
    node.kind = Node::Class;
    node.cls = static_cast<uint32_t>(re_.classes_.size());
    re_.classes_.push_back(std::move(cls));
    return node;
  }

  Node makeChar(char32_t c) {
    Node node;
    node.kind = Node::Char;
    node.c = c;
    node.fold = fold_;
    return node;
  }

  bool parseHex(size_t digits, char32_t &out) {
    char32_t v = 0;
    for (size_t k = 0; k < digits; ++k) {
      char32_t c = peek();
      int d = (c >= '0' && c <= '9')   ? int(c - '0')
              : (c >= 'a' && c <= 'f') ? int(c - 'a' + 10)
              : (c >= 'A' && c <= 'F') ? int(c - 'A' + 10)
                                       : -1;
      if (atEnd() || d < 0) {
        fail("bad hexadecimal escape");
        return false;
      }
      v = v * 16 + d;
      ++i_;
    }
    out = v;
    return true;
  }

  // \p{Name}, \p{^Name}, \pL; i_ is just past the 'p' or 'P'.
  bool parseProperty(bool negated, Regex::ClassItem &item) {
    std::string name;
    if (!atEnd() && peek() == '{') {
      ++i_;
      if (!atEnd() && peek() == '^') {
        negated = !negated;
        ++i_;
      }
      while (!atEnd() && peek() != '}') {
        if (peek() > 127) {
          fail("bad property name");
          return false;
        }
        if (peek() != ' ' && peek() != '_' && peek() != '-')
          name += static_cast<char>(peek());
        else if (peek() == '_')
          name += '_';
        ++i_;
      }
      if (atEnd()) {
        fail("unterminated \\p{");
        return false;
      }
      ++i_;
    } else if (!atEnd() && peek() < 128) {
      name = static_cast<char>(peek());
      ++i_;
    }
    CategoryMask mask = unicode::categoryMaskForName(name);
    if (!mask) {
      fail("unsupported property '\\p{" + name + "}'");
      return false;
    }
    item.kind = Regex::ClassItem::Categories;
    item.mask = mask;
    item.negated = negated;
    return true;
  }

  // An escape; i_ is just past the backslash. Returns true with `item` set
  // for class escapes, else true with `ch` set for a literal code point.
  bool parseEscape(bool inClass, bool &isItem, Regex::ClassItem &item, char32_t &ch) {
    if (atEnd()) {
      fail("trailing backslash");
      return false;
    }
    char32_t c = pat_[i_++];
    isItem = true;
    switch (c) {
    case 's': case 'S':
      item = {Regex::ClassItem::Space, c == 'S'};
      return true;
    case 'd': case 'D':
      item = {Regex::ClassItem::Digit, c == 'D'};
      return true;
    case 'w': case 'W':
      item = {Regex::ClassItem::Word, c == 'W'};
      return true;
    case 'p': case 'P':
      return parseProperty(c == 'P', item);
    default:
      break;
    }
    isItem = false;
    switch (c) {
    case 'n': ch = '\n'; return true;
    case 'r': ch = '\r'; return true;
    case 't': ch = '\t'; return true;
    case 'f': ch = '\f'; return true;
    case 'v': ch = '\v'; return true;
    case 'a': ch = 0x07; return true;
    case 'e': ch = 0x1B; return true;
    case 'x':
      if (!atEnd() && peek() == '{') {
        ++i_;
        size_t start = i_;
        while (!atEnd() && peek() != '}')
          ++i_;
        size_t count = i_ - start;
        if (atEnd() || count == 0 || count > 6) {
          fail("bad \\x{...} escape");
          return false;
        }
        i_ = start;
        if (!parseHex(count, ch))
          return false;
        ++i_; // '}'
        return true;
      }
      return parseHex(2, ch);
    case 'u':
      return parseHex(4, ch);
    default:
      break;
    }
    if (c < 128 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      --i_;
      fail(std::string("unsupported escape '\\") + static_cast<char>(c) + "'" +
           (inClass ? " in a class" : ""));
      return false;
    }
    ch = c; // an escaped punctuation or other character stands for itself
    return true;
  }

  Node parseClass() {
    ++i_; // '['
    Regex::CharClass cls;
    if (!atEnd() && peek() == '^') {
      cls.negated = true;
      ++i_;
    }
    bool first = true;
    while (!failed_) {
      if (atEnd()) {
        fail("unterminated character class");
        break;
      }
      char32_t c = peek();
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      if (c == '[') {
        fail("nested classes and [:name:] are unsupported");
        break;
      }
      if (c == '&' && peek(1) == '&') {
        fail("class intersection is unsupported");
        break;
      }
      char32_t lo;
      ++i_;
      if (c == '\\') {
        bool isItem;
        Regex::ClassItem item;
        if (!parseEscape(true, isItem, item, lo))
          break;
        if (isItem) {
          cls.items.push_back(item);
          continue;
        }
      } else {
        lo = c;
      }
      char32_t hi = lo;
      if (!atEnd() && peek() == '-' && peek(1) != ']' && i_ + 1 < pat_.size()) {
        ++i_;
        char32_t h = pat_[i_++];
        if (h == '\\') {
          bool isItem;
          Regex::ClassItem item;
          if (!parseEscape(true, isItem, item, hi))
            break;
          if (isItem) {
            fail("a class escape cannot end a range");
            break;
          }
        } else {
          hi = h;
        }
        if (hi < lo) {
          fail("class range is backwards");
          break;
        }
      }
      Regex::ClassItem range{Regex::ClassItem::Range};
      range.lo = lo;
      range.hi = hi;
      cls.items.push_back(range);
    }
    return addClass(std::move(cls));
  }

  Node parseGroup() {
    ++i_; // '('
    bool savedFold = fold_;
    Node result;
    if (!atEnd() && peek() == '?') {
      ++i_;
      char32_t c = peek();
      if (c == ':') {
        ++i_;
        result = parseAlt();
      } else if (c == '=' || c == '!') {
        ++i_;
        result.kind = Node::Look;
        result.negate = c == '!';
        result.kids.push_back(parseAlt());
      } else if (c == '<' && peek(1) != '=' && peek(1) != '!') {
        ++i_; // a named group: captures do not matter for splitting
        while (!atEnd() && peek() != '>')
          ++i_;
        if (atEnd()) {
          fail("unterminated group name");
          return result;
        }
        ++i_;
        result = parseAlt();
      } else if (c == 'i' || c == '-') {
        bool on = true, sawFlag = false;
        while (!atEnd() && (peek() == 'i' || peek() == '-')) {
          if (peek() == '-')
            on = false;
          else {
            fold_ = on;
            sawFlag = true;
          }
          ++i_;
        }
        if (!sawFlag || atEnd() || (peek() != ':' && peek() != ')')) {
          fail("unsupported group flags (only 'i' is supported)");
          return result;
        }
        if (peek() == ')') {
          // (?i) applies to the rest of the enclosing group.
          ++i_;
          result = parseAlt();
          fold_ = savedFold;
          return result;
        }
        ++i_;
        result = parseAlt();
      } else {
        fail("unsupported group construct '(?" +
             std::string(1, c < 128 ? static_cast<char>(c) : '?') + "'");
        return result;
      }
    } else {
      result = parseAlt();
    }
    fold_ = savedFold;
    if (failed_)
      return result;
    if (atEnd() || peek() != ')') {
      fail("missing ')'");
      return result;
    }
    ++i_;
    return result;
  }

  Node parseAtom() {
    char32_t c = peek();
    Node node;
    switch (c) {
    case '(':
      return parseGroup();
    case '[':
      return parseClass();
    case '.':
      ++i_;
      node.kind = Node::Any;
      return node;
    case '^':
    case '$':
      ++i_;
      node.kind = Node::Assert;
      node.assertOp = c == '^' ? Regex::Op::LineStart : Regex::Op::LineEnd;
      return node;
    case '*':
    case '+':
    case '?':
      fail("nothing to repeat");
      return node;
    case '\\': {
      ++i_;
      if (!atEnd() && (peek() == 'A' || peek() == 'z')) {
        node.kind = Node::Assert;
        node.assertOp = peek() == 'A' ? Regex::Op::TextStart : Regex::Op::TextEnd;
        ++i_;
        return node;
      }
      bool isItem;
      Regex::ClassItem item;
      char32_t ch;
      if (!parseEscape(false, isItem, item, ch))
        return node;
      return isItem ? makeClassNode(item) : makeChar(ch);
    }
    default:
      ++i_;
      return makeChar(c);
    }
  }

  uint32_t here() const { return static_cast<uint32_t>(re_.program_.size()); }

  void emitSingle(const Node &node, Regex::Inst &inst) {
    switch (node.kind) {
    case Node::Char:
      if (node.fold && unicode::simpleFold(node.c) != node.c) {
        inst.op = Regex::Op::CharFold;
        inst.a = unicode::simpleFold(node.c);
      } else if (node.fold) {
        // Characters that other characters fold to (e.g. 's' <- 'S', U+017F).
        inst.op = Regex::Op::CharFold;
        inst.a = node.c;
      } else {
        inst.op = Regex::Op::Char;
        inst.a = node.c;
      }
      break;
    case Node::Class:
      inst.op = Regex::Op::Class;
      inst.a = node.cls;
      break;
    default:
      inst.op = Regex::Op::Any;
      break;
    }
  }

  void emit(const Node &node) {
    std::vector<Regex::Inst> &prog = re_.program_;
    switch (node.kind) {
    case Node::Empty:
      return;
    case Node::Char:
    case Node::Class:
    case Node::Any: {
      Regex::Inst inst{Regex::Op::Any};
      emitSingle(node, inst);
      prog.push_back(inst);
      return;
    }
    case Node::Concat:
      for (const Node &kid : node.kids)
        emit(kid);
      return;
    case Node::Alt: {
      std::vector<uint32_t> jumps;
      for (size_t k = 0; k < node.kids.size(); ++k) {
        if (k + 1 < node.kids.size()) {
          uint32_t split = here();
          prog.push_back({Regex::Op::Split});
          prog[split].x = here();
          emit(node.kids[k]);
          jumps.push_back(here());
          prog.push_back({Regex::Op::Jmp});
          prog[split].y = here();
        } else {
          emit(node.kids[k]);
        }
      }
      for (uint32_t j : jumps)
        prog[j].x = here();
      return;
    }
    case Node::Repeat: {
      const Node &kid = node.kids[0];
      if (kid.isSingle()) {
        Regex::Inst matcher{Regex::Op::Any};
        emitSingle(kid, matcher);
        Regex::Inst inst{Regex::Op::Repeat};
        inst.mode = node.mode;
        inst.x = matcher.a;
        inst.y = static_cast<uint32_t>(matcher.op);
        inst.a = node.min;
        inst.b = node.max;
        prog.push_back(inst);
        return;
      }
      for (uint32_t k = 0; k < node.min; ++k)
        emit(kid);
      bool lazy = node.mode == Regex::kLazy;
      if (node.max == kInf) {
        uint32_t loop = here();
        prog.push_back({Regex::Op::Split});
        uint32_t body = here();
        emit(kid);
        prog.push_back({Regex::Op::Jmp});
        prog.back().x = loop;
        prog[loop].x = lazy ? here() : body;
        prog[loop].y = lazy ? body : here();
        return;
      }
      std::vector<uint32_t> splits;
      for (uint32_t k = node.min; k < node.max; ++k) {
        splits.push_back(here());
        prog.push_back({Regex::Op::Split});
        prog.back().x = here(); // patched below for lazy
        emit(kid);
      }
      for (uint32_t s : splits) {
        uint32_t body = s + 1;
        prog[s].x = lazy ? here() : body;
        prog[s].y = lazy ? body : here();
      }
      return;
    }
    case Node::Look: {
      Regex::Inst inst{Regex::Op::Look};
      inst.a = node.negate ? 1 : 0;
      looks_.emplace_back(here(), &node.kids[0]);
      prog.push_back(inst);
      return;
    }
    case Node::Assert:
      prog.push_back({node.assertOp});
      return;
    }
  }

  Regex &re_;
  std::u32string pat_;
  size_t i_ = 0;
  bool fold_ = false;
  bool failed_ = false;
  Status status_;
  std::vector<std::pair<uint32_t, const Node *>> looks_;
};

StatusOr<Regex> Regex::compile(std::string_view pattern) {
  Regex re;
  re.pattern_ = std::string(pattern);
  if (!unicode::isValidUtf8(pattern))
    return Status::error("pattern is not valid UTF-8");
  RegexCompiler compiler(pattern, re);
  // Look-ahead bodies point into the AST, which lives inside compile().
  M2C_RETURN_IF_ERROR(compiler.compile());
  re.computeFirstSets();
  return re;
}

} // namespace m2c::tokenizer
