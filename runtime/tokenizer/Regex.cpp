//===- Regex.cpp - The backtracking matcher for split patterns ------------===//

#include "runtime/tokenizer/Regex.h"

namespace m2c::tokenizer {

using unicode::CategoryMask;
using unicode::maskOf;

namespace {

constexpr uint32_t kInf = Regex::kUnbounded;
enum FrameKind : uint32_t { kAlt = 0, kGiveBack = 1, kTakeMore = 2 };

constexpr CategoryMask kWordMask = maskOf(unicode::Lu) | maskOf(unicode::Ll) |
                                   maskOf(unicode::Lt) | maskOf(unicode::Lm) |
                                   maskOf(unicode::Lo) | maskOf(unicode::Mn) |
                                   maskOf(unicode::Mc) | maskOf(unicode::Me) |
                                   maskOf(unicode::Nd) | maskOf(unicode::Pc);

} // namespace

void DecodedText::assign(std::string_view utf8) {
  cps.clear();
  cats.clear();
  offsets.clear();
  cps.reserve(utf8.size());
  cats.reserve(utf8.size());
  offsets.reserve(utf8.size() + 1);
  size_t pos = 0;
  while (pos < utf8.size()) {
    offsets.push_back(static_cast<uint32_t>(pos));
    unsigned char c = static_cast<unsigned char>(utf8[pos]);
    char32_t cp = c < 0x80 ? (++pos, c) : unicode::decodeUtf8(utf8, pos);
    cps.push_back(cp);
    cats.push_back(unicode::category(cp));
  }
  offsets.push_back(static_cast<uint32_t>(utf8.size()));
}

bool Regex::CharClass::matchesSlow(char32_t cp, uint8_t cat) const {
  bool any = false;
  for (const ClassItem &item : items) {
    bool m = false;
    switch (item.kind) {
    case ClassItem::Range:
      m = cp >= item.lo && cp <= item.hi;
      break;
    case ClassItem::Categories:
      m = (item.mask >> cat) & 1;
      break;
    case ClassItem::Space:
      m = unicode::isWhiteSpace(cp);
      break;
    case ClassItem::Digit:
      m = cat == unicode::Nd;
      break;
    case ClassItem::Word:
      m = (kWordMask >> cat) & 1;
      break;
    }
    if (m != item.negated) {
      any = true;
      break;
    }
  }
  return any != negated;
}

Regex::FirstSet Regex::singleFirst(Op op, uint32_t arg) const {
  FirstSet f;
  constexpr CategoryMask kAll = (CategoryMask(1) << unicode::kNumCategories) - 1;
  switch (op) {
  case Op::Char:
    if (arg < 128)
      f.ascii.set(arg);
    else
      f.nonAscii = maskOf(unicode::category(arg));
    break;
  case Op::CharFold:
    // Anything folding to arg: both ASCII cases, any non-ASCII category.
    for (char32_t cp = 0; cp < 128; ++cp)
      if (unicode::simpleFold(cp) == arg)
        f.ascii.set(cp);
    f.nonAscii = kAll;
    break;
  case Op::Class: {
    const CharClass &cls = classes_[arg];
    f.ascii = cls.ascii;
    // Categories some non-ASCII member may have. A category is excluded only
    // when the class provably rejects all of it.
    CategoryMask covered = 0, possible = 0;
    bool anything = false;
    for (const ClassItem &item : cls.items) {
      CategoryMask m = 0;
      bool exactCategories = !item.negated;
      switch (item.kind) {
      case ClassItem::Categories:
        m = item.mask;
        break;
      case ClassItem::Digit:
        m = maskOf(unicode::Nd);
        break;
      case ClassItem::Word:
        m = kWordMask;
        break;
      case ClassItem::Space:
        m = maskOf(unicode::Zs) | maskOf(unicode::Zl) | maskOf(unicode::Zp) |
            maskOf(unicode::Cc);
        exactCategories = false; // covers only part of those categories
        break;
      case ClassItem::Range:
        exactCategories = false;
        break;
      }
      if (item.negated || item.kind == ClassItem::Range)
        anything = true;
      possible |= m;
      if (exactCategories)
        covered |= m;
    }
    f.nonAscii = cls.negated ? (kAll & ~covered) : (anything ? kAll : possible);
    break;
  }
  default: // Any
    f.ascii.set();
    f.ascii.reset('\n');
    f.nonAscii = kAll;
    break;
  }
  return f;
}

Regex::FirstSet Regex::firstOf(uint32_t pc) const {
  const Inst &in = program_[pc];
  FirstSet f;
  auto merge = [&f](const FirstSet &other) {
    f.ascii |= other.ascii;
    f.nonAscii |= other.nonAscii;
    f.nullable = f.nullable || other.nullable;
  };
  switch (in.op) {
  case Op::Char:
  case Op::CharFold:
  case Op::Class:
  case Op::Any:
    return singleFirst(in.op, in.op == Op::Any ? 0 : in.a);
  case Op::Repeat:
    f = singleFirst(static_cast<Op>(in.y), in.x);
    if (in.a == 0)
      merge(first_[pc + 1]);
    return f;
  case Op::Split:
    merge(first_[in.x]);
    merge(first_[in.y]);
    return f;
  case Op::Jmp:
    return first_[in.x];
  case Op::Match:
    f.nullable = true;
    return f;
  default: // assertions and look-arounds consume nothing: what follows decides
    return first_[pc + 1];
  }
}

void Regex::computeFirstSets() {
  // Sets only grow, so iterating to a fixed point handles loops.
  first_.assign(program_.size(), FirstSet());
  bool changed = true;
  while (changed) {
    changed = false;
    for (uint32_t pc = static_cast<uint32_t>(program_.size()); pc-- > 0;) {
      FirstSet f = firstOf(pc);
      FirstSet &old = first_[pc];
      if (f.ascii != old.ascii || f.nonAscii != old.nonAscii || f.nullable != old.nullable) {
        old = f;
        changed = true;
      }
    }
  }
}

bool Regex::single(const Inst &inst, char32_t cp, uint8_t cat) const {
  switch (static_cast<Op>(inst.y)) {
  case Op::Char:
    return cp == inst.x;
  case Op::CharFold:
    return unicode::simpleFold(cp) == inst.x;
  case Op::Class:
    return classes_[inst.x].matches(cp, cat);
  default:
    return cp != '\n';
  }
}

bool Regex::run(uint32_t pc, size_t pos, const DecodedText &t, size_t &end,
                Scratch &st) const {
  const size_t base = st.size();
  const size_t n = t.size();
  const char32_t *cps = t.cps.data();
  const uint8_t *cats = t.cats.data();
  while (true) {
    const Inst &in = program_[pc];
    bool ok;
    switch (in.op) {
    case Op::Char:
      ok = pos < n && cps[pos] == in.a;
      pos += ok, pc += ok;
      break;
    case Op::CharFold:
      ok = pos < n && unicode::simpleFold(cps[pos]) == in.a;
      pos += ok, pc += ok;
      break;
    case Op::Class:
      ok = pos < n && classes_[in.a].matches(cps[pos], cats[pos]);
      pos += ok, pc += ok;
      break;
    case Op::Any:
      ok = pos < n && cps[pos] != '\n';
      pos += ok, pc += ok;
      break;
    case Op::Repeat: {
      size_t avail = n - pos;
      size_t limit = in.b == kInf ? avail : std::min<size_t>(avail, in.b);
      size_t k = 0;
      if (in.mode == kLazy) {
        while (k < in.a && k < limit && single(in, cps[pos + k], cats[pos + k]))
          ++k;
        ok = k == in.a;
        if (ok) {
          pos += k;
          if (k < in.b)
            st.push_back({kTakeMore, pc, static_cast<uint32_t>(pos), static_cast<uint32_t>(k)});
          ++pc;
        }
        break;
      }
      if (static_cast<Op>(in.y) == Op::Class) {
        const CharClass &cls = classes_[in.x];
        while (k < limit && cls.matches(cps[pos + k], cats[pos + k]))
          ++k;
      } else {
        while (k < limit && single(in, cps[pos + k], cats[pos + k]))
          ++k;
      }
      ok = k >= in.a;
      if (ok) {
        if (in.mode == kGreedy && k > in.a)
          st.push_back({kGiveBack, pc + 1, static_cast<uint32_t>(pos + k),
                        static_cast<uint32_t>(pos + in.a)});
        pos += k;
        ++pc;
      }
      break;
    }
    case Op::Split: {
      // Take only the branches that can start with the next character.
      const FirstSet &fx = first_[in.x], &fy = first_[in.y];
      bool tryX = pos < n ? fx.mayStart(cps[pos], cats[pos]) || fx.nullable : fx.nullable;
      bool tryY = pos < n ? fy.mayStart(cps[pos], cats[pos]) || fy.nullable : fy.nullable;
      if (tryX && tryY)
        st.push_back({kAlt, in.y, static_cast<uint32_t>(pos), 0});
      pc = tryX ? in.x : in.y;
      ok = tryX || tryY;
      break;
    }
    case Op::Jmp:
      pc = in.x;
      ok = true;
      break;
    case Op::Look: {
      size_t ignored;
      ok = run(in.x, pos, t, ignored, st) != (in.a == 1);
      pc += ok;
      break;
    }
    case Op::LineStart:
      ok = pos == 0 || cps[pos - 1] == '\n';
      pc += ok;
      break;
    case Op::LineEnd:
      ok = pos == n || cps[pos] == '\n';
      pc += ok;
      break;
    case Op::TextStart:
      ok = pos == 0;
      pc += ok;
      break;
    case Op::TextEnd:
      ok = pos == n;
      pc += ok;
      break;
    case Op::Match:
      end = pos;
      st.resize(base);
      return true;
    default:
      ok = false;
      break;
    }
    if (ok)
      continue;
    // Backtrack to the most recent choice point.
    while (true) {
      if (st.size() == base)
        return false;
      Frame &f = st.back();
      if (f.kind == kAlt) {
        pc = f.pc;
        pos = f.pos;
        st.pop_back();
        break;
      }
      if (f.kind == kGiveBack) {
        --f.pos;
        pos = f.pos;
        pc = f.pc;
        if (f.pos == f.limit)
          st.pop_back();
        break;
      }
      const Inst &rep = program_[f.pc];
      if (f.pos < n && single(rep, cps[f.pos], cats[f.pos])) {
        ++f.pos;
        ++f.limit;
        pos = f.pos;
        pc = f.pc + 1;
        if (f.limit >= rep.b)
          st.pop_back();
        break;
      }
      st.pop_back();
    }
  }
}

bool Regex::search(const DecodedText &text, size_t from, size_t &matchBegin, size_t &matchEnd,
                   Scratch &scratch) const {
  const FirstSet &start = first_[0];
  for (size_t p = from; p <= text.size(); ++p) {
    if (!start.nullable &&
        (p == text.size() || !start.mayStart(text.cps[p], text.cats[p])))
      continue;
    size_t end;
    if (run(0, p, text, end, scratch)) {
      matchBegin = p;
      matchEnd = end;
      return true;
    }
  }
  return false;
}

} // namespace m2c::tokenizer
