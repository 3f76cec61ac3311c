//===- ChatTemplate.cpp - MiniMax-M2's chat format, rendered in C++ -------===//
//
// Each block below names the template lines it mirrors; whitespace follows
// what Jinja emits with trim_blocks and lstrip_blocks, not the template's
// indentation.
//
//===----------------------------------------------------------------------===//

#include "runtime/chat/ChatTemplate.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace m2c::chat {

namespace {

void appendJsonString(std::string &out, const std::string &s) {
  out += '"';
  for (char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
        out += buf;
      } else {
        out += c;
      }
    }
  }
  out += '"';
}

// Python's float repr: the shortest round-trip digits, in exponent form when
// the decimal exponent is below -4 or above 15, else positional with ".0".
void appendPythonFloat(std::string &out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Infinity" : "Infinity";
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci looks like "-d.ddde+XX".
  bool negative = sci[0] == '-';
  if (negative)
    sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  int exponent = std::stoi(sci.substr(e + 1));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  if (negative)
    out += '-';
  int decpt = exponent + 1; // digits are d.ddd x 10^exponent
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits;
    out.append(decpt - digits.size(), '0');
    out += ".0";
  } else {
    out.append(digits, 0, decpt);
    out += '.';
    out.append(digits, decpt, std::string::npos);
  }
}

void dumpTo(std::string &out, const Json &v) {
  switch (v.type()) {
  case Json::value_t::null:
    out += "null";
    break;
  case Json::value_t::boolean:
    out += v.get<bool>() ? "true" : "false";
    break;
  case Json::value_t::number_integer:
    out += std::to_string(v.get<int64_t>());
    break;
  case Json::value_t::number_unsigned:
    out += std::to_string(v.get<uint64_t>());
    break;
  case Json::value_t::number_float:
    appendPythonFloat(out, v.get<double>());
    break;
  case Json::value_t::string:
    appendJsonString(out, v.get_ref<const std::string &>());
    break;
  case Json::value_t::array: {
    out += '[';
    bool first = true;
    for (const Json &item : v) {
      if (!first)
        out += ", ";
      first = false;
      dumpTo(out, item);
    }
    out += ']';
    break;
  }
  case Json::value_t::object: {
    out += '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first)
        out += ", ";
      first = false;
      appendJsonString(out, it.key());
      out += ": ";
      dumpTo(out, it.value());
    }
    out += '}';
    break;
  }
  default: // binary and discarded values do not come from JSON text
    out += "null";
    break;
  }
}

// Python's str.strip('\n').
std::string stripNewlines(const std::string &s) {
  size_t b = s.find_first_not_of('\n');
  if (b == std::string::npos)
    return "";
  size_t e = s.find_last_not_of('\n');
  return s.substr(b, e - b + 1);
}

// Python's s.split(sep)[0] and s.split(sep)[-1].
std::string firstPart(const std::string &s, const std::string &sep) {
  size_t at = s.find(sep);
  return at == std::string::npos ? s : s.substr(0, at);
}
std::string lastPart(const std::string &s, const std::string &sep) {
  size_t at = s.rfind(sep);
  return at == std::string::npos ? s : s.substr(at + sep.size());
}

bool isAssistant(const std::string &role) { return role == "assistant" || role == "ai"; }

// "{%- if tools -%} ... {%- endif -%}" inside the system block.
Status appendTools(std::string &out, const std::vector<Json> &tools) {
  out += "\n\n# Tools\nYou may call one or more tools to assist with the user query.\n"
         "Here are the tools available in JSONSchema format:\n";
  out += "\n<tools>\n";
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json &tool = tools[i];
    if (!tool.is_object() || !tool.contains("function"))
      return Status::error("tools[" + std::to_string(i) + "]: expected an object with a "
                           "\"function\" member");
    out += "<tool>";
    dumpTo(out, tool["function"]);
    out += "</tool>\n";
  }
  out += "</tools>\n\n";
  out += "When making tool calls, use XML format to invoke tools and pass parameters:\n";
  out += "\n<minimax:tool_call>\n<invoke name=\"tool-name-1\">\n"
         "<parameter name=\"param-key-1\">param-value-1</parameter>\n"
         "<parameter name=\"param-key-2\">param-value-2</parameter>\n...\n</invoke>\n"
         "</minimax:tool_call>";
  return Status::ok();
}

// visible_text(content) for JSON content: a string, or text parts joined.
StatusOr<std::string> visibleText(const Json &content, const std::string &where) {
  if (content.is_null())
    return std::string();
  if (content.is_string())
    return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (const Json &item : content) {
      if (item.is_string())
        text += item.get<std::string>();
      else if (item.is_object() && item.value("type", Json()) == "text" && item.contains("text")) {
        if (!item["text"].is_string())
          return Status::error(where + ": a text part's \"text\" must be a string");
        text += item["text"].get<std::string>();
      }
    }
    return text;
  }
  return Status::error(where + ": content must be a string, a list of parts or null");
}

} // namespace

std::string pythonJsonDumps(const Json &value) {
  std::string out;
  dumpTo(out, value);
  return out;
}

StatusOr<std::string> renderChat(const std::vector<Message> &messages,
                                 const std::vector<Json> &tools, const RenderOptions &options) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string &role = messages[i].role;
    if (role != "system" && role != "user" && role != "tool" && !isAssistant(role))
      return Status::error("messages[" + std::to_string(i) + "]: unknown role '" + role +
                           "' (expected system, user, assistant or tool)");
    for (size_t k = 0; k < messages[i].toolCalls.size(); ++k)
      if (!messages[i].toolCalls[k].arguments.is_object())
        return Status::error("messages[" + std::to_string(i) + "].tool_calls[" +
                             std::to_string(k) + "]: arguments must be an object");
  }
  // Only a first message with role system is the system message.
  const Message *system = nullptr;
  size_t begin = 0;
  if (!messages.empty() && messages[0].role == "system") {
    system = &messages[0];
    begin = 1;
  }
  std::vector<const Message *> conversation;
  for (size_t i = begin; i < messages.size(); ++i)
    conversation.push_back(&messages[i]);
  int64_t lastUser = -1;
  for (size_t i = 0; i < conversation.size(); ++i)
    if (conversation[i]->role == "user")
      lastUser = static_cast<int64_t>(i);

  std::string out = std::string(kBeginOfDocument) + kRoleMarker + "system\n";
  // build_system_message()
  if (system && !system->content.empty())
    out += system->content;
  else
    out += options.modelIdentity;
  if (system && !system->currentDate.empty())
    out += "\nCurrent date: " + system->currentDate;
  if (system && !system->currentLocation.empty())
    out += "\nCurrent location: " + system->currentLocation;
  if (!tools.empty())
    M2C_RETURN_IF_ERROR(appendTools(out, tools));
  out += "[e~[\n";

  bool haveLastToolCall = false;
  for (size_t i = 0; i < conversation.size(); ++i) {
    const Message &m = *conversation[i];
    if (isAssistant(m.role)) {
      out += "]~b]ai\n";
      std::string reasoning, content = m.content;
      if (m.reasoningContent) {
        reasoning = *m.reasoningContent;
      } else if (content.find(kThinkEnd) != std::string::npos) {
        reasoning =
            stripNewlines(lastPart(stripNewlines(firstPart(content, kThinkEnd)), kThinkBegin));
        content = stripNewlines(lastPart(content, kThinkEnd));
      }
      // Reasoning survives only after the last user turn (interleaved thinking).
      if (!reasoning.empty() && static_cast<int64_t>(i) > lastUser)
        out += "<think>\n" + reasoning + "\n</think>\n\n";
      out += content;
      if (!m.toolCalls.empty()) {
        out += "\n<minimax:tool_call>\n";
        for (const ToolCall &call : m.toolCalls) {
          out += "<invoke name=\"" + call.name + "\">\n";
          for (auto it = call.arguments.begin(); it != call.arguments.end(); ++it) {
            out += "<parameter name=\"" + it.key() + "\">";
            if (it.value().is_string())
              out += it.value().get_ref<const std::string &>();
            else
              dumpTo(out, it.value());
            out += "</parameter>\n";
          }
          out += "</invoke>\n";
        }
        out += "</minimax:tool_call>";
        haveLastToolCall = true;
      } else {
        haveLastToolCall = false;
      }
      out += "[e~[\n";
    } else if (m.role == "tool") {
      if (!haveLastToolCall)
        return Status::error("messages[" + std::to_string(i + begin) +
                             "]: a tool message needs a preceding assistant message with a "
                             "tool call");
      if (i == 0 || conversation[i - 1]->role != "tool")
        out += "]~b]tool";
      out += "\n<response>" + m.content + "</response>";
      if (i + 1 == conversation.size() || conversation[i + 1]->role != "tool")
        out += "[e~[\n";
    } else if (m.role == "user") {
      out += "]~b]user\n" + m.content + "[e~[\n";
    }
    // A system message after the first is not rendered (as in the template).
  }
  if (options.addGenerationPrompt)
    out += "]~b]ai\n<think>\n";
  return out;
}

StatusOr<std::vector<Message>> messagesFromJson(const Json &list) {
  if (!list.is_array())
    return Status::error("messages must be an array");
  std::vector<Message> messages;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json &j = list[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!j.is_object() || !j.contains("role") || !j["role"].is_string())
      return Status::error(where + ": expected an object with a string \"role\"");
    Message m;
    m.role = j["role"].get<std::string>();
    if (j.contains("content")) {
      if (m.role == "tool" && !j["content"].is_string())
        return Status::error(where + ": a tool message's content must be a string");
      StatusOr<std::string> text = visibleText(j["content"], where);
      if (!text)
        return text.status();
      m.content = text.take();
    }
    if (j.contains("reasoning_content") && j["reasoning_content"].is_string())
      m.reasoningContent = j["reasoning_content"].get<std::string>();
    for (const char *key : {"current_date", "current_location"}) {
      if (!j.contains(key))
        continue;
      if (!j[key].is_string())
        return Status::error(where + "." + key + " must be a string");
      (std::string(key) == "current_date" ? m.currentDate : m.currentLocation) =
          j[key].get<std::string>();
    }
    if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
      const Json &calls = j["tool_calls"];
      if (!calls.is_array())
        return Status::error(where + ".tool_calls must be an array");
      for (size_t k = 0; k < calls.size(); ++k) {
        std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
        const Json &call = calls[k].is_object() && calls[k].contains("function")
                               ? calls[k]["function"]
                               : calls[k];
        if (!call.is_object() || !call.contains("name") || !call["name"].is_string())
          return Status::error(cw + ": expected {\"function\": {\"name\", \"arguments\"}}");
        ToolCall tc;
        tc.name = call["name"].get<std::string>();
        if (call.contains("arguments")) {
          const Json &args = call["arguments"];
          if (args.is_string()) {
            Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
            if (parsed.is_discarded() || !parsed.is_object())
              return Status::error(cw + ": arguments must be an object or a JSON object string");
            tc.arguments = std::move(parsed);
          } else if (args.is_object()) {
            tc.arguments = args;
          } else {
            return Status::error(cw + ": arguments must be an object");
          }
        }
        m.toolCalls.push_back(std::move(tc));
      }
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

} // namespace m2c::chat
