//! Tool calling: a chat request's `tools`, `tool_choice` and `parallel_tool_calls`, the
//! tool calls and tool results of its history, and the model's answer read back as
//! OpenAI's `tool_calls`.
//!
//! One text format for every model, Mistral's: an answer that calls tools is
//! [`TOOL_CALLS_MARKER`] followed by a JSON array `[{"name": …, "arguments": {…}}]`. The
//! tools are described to the model in the system message (as text: what a client sends is
//! content, never control tokens); calls in the history are written back in the same format
//! and tool results as `[TOOL_RESULTS]…[/TOOL_RESULTS]` user turns (every chat template
//! accepts user turns; some refuse a `tool` role). The answer is held to the format by a
//! grammar ([`Constraint::ToolCalls`]): built here as one JSON schema — an array of calls,
//! each call one of the offered functions with its `parameters` — checked and bounded by
//! [`crate::schema`] like `response_format`'s, so the arguments always parse and validate.
//! `tool_choice: "auto"` lets the answer be text instead (any text not opening with `[`);
//! `"required"` and a named function leave only calls; `"none"` offers no tool.

use crate::schema::{self, Json};
use crate::Error;
use civia_ipc::{Constraint, TOOL_CALLS_MARKER};
use serde_json::{json, Value};

/// Most functions offered in one request (each is one `anyOf` branch of the calls' schema).
pub const MAX_TOOLS: usize = schema::MAX_ANY_OF;
/// Most calls in one answer with `parallel_tool_calls` (the default).
pub const MAX_PARALLEL_CALLS: u64 = 8;
/// Longest function description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Longest `tool_call_id` (or call `id` in the history), in characters.
pub const MAX_CALL_ID_CHARS: usize = 256;
/// What opens and closes tool results in the prompt.
pub const RESULTS_OPEN: &str = "[TOOL_RESULTS]";
pub const RESULTS_CLOSE: &str = "[/TOOL_RESULTS]";

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Function(String),
}

/// One offered function.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// As sent (its key order kept), shown to the model.
    pub parameters: Json,
}

/// The tools of a request, checked, with the schema of the answer's calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Tools {
    pub tools: Vec<Tool>,
    pub choice: ToolChoice,
    pub parallel: bool,
    /// Canonical schema of the array of calls (only the chosen function with a named choice).
    schema: String,
}

/// A call read from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The arguments object as compact JSON text (OpenAI's `arguments` is a string).
    pub arguments: String,
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> Error {
    Error::invalid(param, message)
}

fn get<'a>(entries: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// OpenAI's function names: 1 to 64 letters, digits, underscores or dashes.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_tool(i: usize, t: &Json) -> Result<Tool, Error> {
    let param = format!("tools[{i}]");
    let Json::Object(t) = t else {
        return Err(invalid(param, format!("`tools[{i}]` must be an object.")));
    };
    match get(t, "type") {
        Some(Json::String(k)) if k == "function" => {}
        Some(Json::String(k)) => {
            return Err(Error::unsupported(
                format!("{param}.type"),
                format!("Tools of type `{k}` are not supported: only `function`."),
            ))
        }
        _ => {
            return Err(invalid(
                format!("{param}.type"),
                format!("`tools[{i}].type` must be `function`."),
            ))
        }
    }
    let Some(Json::Object(f)) = get(t, "function") else {
        return Err(invalid(
            format!("{param}.function"),
            format!("`tools[{i}].function` must be an object with a `name`."),
        ));
    };
    let name = match get(f, "name") {
        Some(Json::String(n)) if valid_name(n) => n.clone(),
        _ => {
            return Err(invalid(
                format!("{param}.function.name"),
                format!(
                    "`tools[{i}].function.name` must be 1 to 64 letters, digits, underscores \
                     or dashes."
                ),
            ))
        }
    };
    let description = match get(f, "description") {
        None | Some(Json::Null) => None,
        Some(Json::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => Some(d.clone()),
        Some(Json::String(_)) => {
            return Err(invalid(
                format!("{param}.function.description"),
                format!(
                    "`tools[{i}].function.description` is longer than {MAX_DESCRIPTION_CHARS} \
                     characters."
                ),
            ))
        }
        Some(_) => {
            return Err(invalid(
                format!("{param}.function.description"),
                format!("`tools[{i}].function.description` must be a string."),
            ))
        }
    };
    if !matches!(get(f, "strict"), None | Some(Json::Null | Json::Bool(_))) {
        return Err(invalid(
            format!("{param}.function.strict"),
            format!("`tools[{i}].function.strict` must be a boolean."),
        ));
    }
    // No parameters: a function without arguments (OpenAI's reading too).
    let parameters = match get(f, "parameters") {
        None | Some(Json::Null) => Json::Object(vec![
            ("type".into(), Json::String("object".into())),
            ("properties".into(), Json::Object(Vec::new())),
        ]),
        Some(p) => p.clone(),
    };
    Ok(Tool {
        name,
        description,
        parameters,
    })
}

/// The message of a schema refusal, re-addressed from `response_format` to `field`.
fn readdress(e: Error, param: &str, field: &str) -> Error {
    let re = |m: String| m.replace("`response_format.json_schema.schema`", field);
    match e {
        Error::Invalid { message, .. } => invalid(param, re(message)),
        Error::Unsupported { message, .. } => Error::unsupported(param, re(message)),
        other => other,
    }
}

/// Every `$ref` of a canonical schema (`#/$defs/<name>`) renamed to `#/$defs/<prefix><name>`.
fn prefix_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            *r = format!("#/$defs/{prefix}{name}");
                        }
                    }
                    (_, x) => prefix_refs(x, prefix),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| prefix_refs(x, prefix)),
        _ => {}
    }
}

/// The schema of one call of `tool` (its canonical `parameters` and their definitions
/// hoisted into `defs`, as `t<i>` and `t<i><name>`).
fn call_schema(
    i: usize,
    tool: &Tool,
    defs: &mut serde_json::Map<String, Value>,
) -> Result<Value, Error> {
    let param = format!("tools[{i}].function.parameters");
    let canonical = schema::canonical(&tool.parameters)
        .map_err(|e| readdress(e, &param, &format!("`{param}`")))?;
    let mut params: Value = serde_json::from_str(&canonical)
        .map_err(|e| invalid(&param, format!("`{param}`: {e}.")))?;
    // The arguments are an object: the schema's root, or the definition its `$ref` names.
    let root = match params.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| params.get("$defs")?.get(name)),
        None => Some(&params),
    };
    if root.and_then(|r| r.get("type")).and_then(Value::as_str) != Some("object") {
        return Err(invalid(
            &param,
            format!("`{param}` must describe an object (`\"type\": \"object\"`)."),
        ));
    }
    let prefix = format!("t{i}");
    prefix_refs(&mut params, &prefix);
    if let Some(Value::Object(own)) = params.as_object_mut().and_then(|m| m.remove("$defs")) {
        for (name, def) in own {
            defs.insert(format!("{prefix}{name}"), def);
        }
    }
    // The parameters as a definition of their own: their depth is counted from there.
    defs.insert(prefix.clone(), params);
    Ok(json!({
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": {"$ref": format!("#/$defs/{prefix}")}},
        "required": ["name", "arguments"],
        "additionalProperties": false,
    }))
}

impl Tools {
    /// The names of the functions the answer may call (none with `tool_choice: "none"`).
    pub fn callable(&self) -> Vec<String> {
        match &self.choice {
            ToolChoice::None => Vec::new(),
            ToolChoice::Function(n) => vec![n.clone()],
            _ => self.tools.iter().map(|t| t.name.clone()).collect(),
        }
    }

    /// The tools of a request, or `None` when it offers none (then `tool_choice` may only
    /// be `none` or `auto`).
    pub fn parse(
        tools: Option<&Json>,
        tool_choice: Option<&Json>,
        parallel_tool_calls: Option<&Json>,
    ) -> Result<Option<Tools>, Error> {
        let list = match tools {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(a)) => a.clone(),
            Some(_) => return Err(invalid("tools", "`tools` must be an array.")),
        };
        if list.len() > MAX_TOOLS {
            return Err(invalid(
                "tools",
                format!("At most {MAX_TOOLS} tools are accepted per request."),
            ));
        }
        let mut parsed = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let tool = parse_tool(i, t)?;
            if parsed.iter().any(|p: &Tool| p.name == tool.name) {
                return Err(invalid(
                    format!("tools[{i}].function.name"),
                    format!("The function `{}` is given twice.", tool.name),
                ));
            }
            parsed.push(tool);
        }
        let choice = match tool_choice {
            None | Some(Json::Null) => ToolChoice::Auto,
            Some(Json::String(s)) => match s.as_str() {
                "none" => ToolChoice::None,
                "auto" => ToolChoice::Auto,
                "required" => ToolChoice::Required,
                other => {
                    return Err(invalid(
                        "tool_choice",
                        format!(
                            "`tool_choice` `{other}` is unknown: use none, auto, required or \
                             {{\"type\": \"function\", \"function\": {{\"name\": …}}}}."
                        ),
                    ))
                }
            },
            Some(Json::Object(o)) => {
                let name = match (get(o, "type"), get(o, "function")) {
                    (Some(Json::String(t)), Some(Json::Object(f))) if t == "function" => {
                        match get(f, "name") {
                            Some(Json::String(n)) => Some(n.clone()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let Some(name) = name else {
                    return Err(invalid(
                        "tool_choice",
                        "`tool_choice` must be none, auto, required or {\"type\": \"function\", \
                         \"function\": {\"name\": …}}.",
                    ));
                };
                if !parsed.iter().any(|t| t.name == name) {
                    return Err(invalid(
                        "tool_choice",
                        format!("`tool_choice` names `{name}`, which is not in `tools`."),
                    ));
                }
                ToolChoice::Function(name)
            }
            Some(_) => {
                return Err(invalid(
                    "tool_choice",
                    "`tool_choice` must be a string or an object.",
                ))
            }
        };
        let parallel = match parallel_tool_calls {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "parallel_tool_calls",
                    "`parallel_tool_calls` must be a boolean.",
                ))
            }
        };
        if parsed.is_empty() {
            return match choice {
                ToolChoice::None | ToolChoice::Auto => Ok(None),
                _ => Err(invalid(
                    "tool_choice",
                    "`tool_choice` asks for a tool call but `tools` is empty.",
                )),
            };
        }
        let mut defs = serde_json::Map::new();
        let mut branches = Vec::new();
        for (i, tool) in parsed.iter().enumerate() {
            // Every tool is checked, even those a named choice leaves out.
            let call = call_schema(i, tool, &mut defs)?;
            if matches!(&choice, ToolChoice::Function(n) if *n != tool.name) {
                continue;
            }
            branches.push(call);
        }
        let items = match branches.len() {
            1 => branches.remove(0),
            _ => json!({"anyOf": branches}),
        };
        let mut calls = json!({
            "type": "array",
            "items": items,
            "minItems": 1,
            "maxItems": if parallel { MAX_PARALLEL_CALLS } else { 1 },
        });
        if !defs.is_empty() {
            calls["$defs"] = Value::Object(defs);
        }
        let calls: Json = serde_json::from_value(calls)
            .map_err(|e| invalid("tools", format!("`tools`: {e}.")))?;
        let schema = schema::canonical(&calls)
            .map_err(|e| readdress(e, "tools", "`tools` (all functions together)"))?;
        Ok(Some(Tools {
            tools: parsed,
            choice,
            parallel,
            schema,
        }))
    }

    /// The grammar constraint of the answer (`None` with `tool_choice: "none"`).
    pub fn constraint(&self) -> Option<Constraint> {
        let text_allowed = match self.choice {
            ToolChoice::None => return None,
            ToolChoice::Auto => true,
            ToolChoice::Required | ToolChoice::Function(_) => false,
        };
        Some(Constraint::ToolCalls {
            schema: self.schema.clone(),
            text_allowed,
        })
    }

    /// What the model reads about the tools (`None` with `tool_choice: "none"`).
    pub fn instruction(&self) -> Option<String> {
        if self.choice == ToolChoice::None {
            return None;
        }
        // `Json` keeps each schema's key order (the order the model is shown).
        let s = |x: &str| Json::String(x.into());
        let functions: Vec<Json> = self
            .tools
            .iter()
            .map(|t| {
                let mut f = vec![("name".to_string(), s(&t.name))];
                if let Some(d) = &t.description {
                    f.push(("description".into(), s(d)));
                }
                f.push(("parameters".into(), t.parameters.clone()));
                Json::Object(vec![
                    ("type".into(), s("function")),
                    ("function".into(), Json::Object(f)),
                ])
            })
            .collect();
        let list = serde_json::to_string(&functions).unwrap_or_default();
        let rule = match &self.choice {
            ToolChoice::Required => "You must call at least one function.".to_string(),
            ToolChoice::Function(n) => format!("You must call the function `{n}`."),
            _ => "Call a function when it helps to answer; otherwise answer in text.".into(),
        };
        let how = if self.parallel {
            "one or more calls"
        } else {
            "exactly one call"
        };
        Some(format!(
            "You can call these functions:\n{list}\n{rule} To call functions, answer only \
             {TOOL_CALLS_MARKER} followed by a JSON array of {how}: \
             {TOOL_CALLS_MARKER}[{{\"name\": \"<function>\", \"arguments\": {{…}}}}]. Their \
             results come back between {RESULTS_OPEN} and {RESULTS_CLOSE}."
        ))
    }
}

/// The calls of an answer that opens with [`TOOL_CALLS_MARKER`] (after whitespace), each of
/// a function in `offered`, or `None` when it is text (or calls cut short, by `max_tokens`
/// say). The grammar already holds the answer to that; the names are checked again here.
pub fn parse_calls(text: &str, offered: &[String]) -> Option<Vec<Call>> {
    let rest = text.trim_start().strip_prefix(TOOL_CALLS_MARKER)?;
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(rest) else {
        return None;
    };
    let mut calls = Vec::with_capacity(items.len());
    for item in items {
        let Json::Object(o) = item else {
            return None;
        };
        let (Some(Json::String(name)), Some(args @ Json::Object(_))) =
            (get(&o, "name"), get(&o, "arguments"))
        else {
            return None;
        };
        if !offered.contains(name) {
            return None;
        }
        calls.push(Call {
            name: name.clone(),
            arguments: serde_json::to_string(args).ok()?,
        });
    }
    (!calls.is_empty()).then_some(calls)
}

/// Whether a streamed answer's start already shows it is text rather than calls
/// (`Some(false)`), calls (`Some(true)`), or not yet (`None`: only whitespace so far).
pub fn opens_calls(start: &str) -> Option<bool> {
    let t = start.trim_start();
    let first = t.chars().next()?;
    Some(first == '[')
}

/// An assistant message's `tool_calls` as the model wrote them (`[TOOL_CALLS][…]`).
pub fn history_calls(i: usize, calls: &Value) -> Result<String, Error> {
    let param = format!("messages[{i}].tool_calls");
    let bad = || {
        invalid(
            &param,
            format!(
                "`messages[{i}].tool_calls` must be an array of {{\"id\", \"type\": \
                 \"function\", \"function\": {{\"name\", \"arguments\"}}}}."
            ),
        )
    };
    let Value::Array(calls) = calls else {
        return Err(bad());
    };
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty()
            || id.chars().count() > MAX_CALL_ID_CHARS
            || c.get("type").and_then(Value::as_str) != Some("function")
        {
            return Err(bad());
        }
        let f = c.get("function").ok_or_else(bad)?;
        let name = f.get("name").and_then(Value::as_str).ok_or_else(bad)?;
        if !valid_name(name) {
            return Err(bad());
        }
        // `arguments` is JSON text; text that does not parse is kept as the model saw it.
        let Some(Value::String(a)) = f.get("arguments") else {
            return Err(bad());
        };
        let args = serde_json::from_str::<Json>(a).unwrap_or_else(|_| Json::String(a.clone()));
        // In the order the model writes a call: name, arguments (then the id).
        out.push(Json::Object(vec![
            ("name".to_string(), Json::String(name.into())),
            ("arguments".to_string(), args),
            ("id".into(), Json::String(id.into())),
        ]));
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(format!(
        "{TOOL_CALLS_MARKER}{}",
        serde_json::to_string(&out).unwrap_or_default()
    ))
}

/// A `tool` message's result as the model reads it.
pub fn history_result(i: usize, call_id: Option<&Value>, content: &str) -> Result<String, Error> {
    let id = match call_id {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_CALL_ID_CHARS => id,
        _ => {
            return Err(invalid(
                format!("messages[{i}].tool_call_id"),
                format!(
                    "`messages[{i}].tool_call_id` must be the id (1 to {MAX_CALL_ID_CHARS} \
                     characters) of the call this result answers."
                ),
            ))
        }
    };
    // Brackets escaped (still the same JSON string): a result cannot write the markers that
    // frame it (`[/TOOL_RESULTS]`) or a call (`[TOOL_CALLS]`) as text the model reads as such.
    let body = json!({"call_id": id, "content": content})
        .to_string()
        .replace('[', "\\u005b")
        .replace(']', "\\u005d");
    Ok(format!("{RESULTS_OPEN}{body}{RESULTS_CLOSE}"))
}

/// OpenAI's `tool_calls` of a message: `ids[i]` for call `i` (drawn by the caller).
pub fn calls_json(calls: &[Call], ids: &[String]) -> Value {
    Value::Array(
        calls
            .iter()
            .zip(ids)
            .map(|(c, id)| {
                json!({"id": id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(v: Value) -> Json {
        serde_json::from_value(v).expect("json")
    }

    fn weather() -> Value {
        json!({"type": "function", "function": {"name": "meteo", "description": "La météo",
            "parameters": {"type": "object", "properties": {"ville": {"type": "string"},
            "jours": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["ville", "jours"], "additionalProperties": false}}})
    }

    fn parse(
        tools: Value,
        choice: Option<Value>,
        parallel: Option<Value>,
    ) -> Result<Option<Tools>, Error> {
        Tools::parse(
            Some(&j(tools)),
            choice.map(j).as_ref(),
            parallel.map(j).as_ref(),
        )
    }

    #[test]
    fn the_calls_schema_holds_every_function_and_its_definitions() {
        let tree = json!({"type": "function", "function": {"name": "arbre", "parameters": {
            "type": "object", "properties": {"n": {"$ref": "#/$defs/Noeud"}}, "required": ["n"],
            "$defs": {"Noeud": {"type": "object", "properties": {"enfants": {"type": "array",
                "items": {"$ref": "#/$defs/Noeud"}, "maxItems": 2}}, "required": ["enfants"]}}}}});
        let t = parse(json!([weather(), tree]), None, None)
            .expect("ok")
            .expect("tools");
        assert_eq!(t.choice, ToolChoice::Auto);
        let s: Value = serde_json::from_str(&t.schema).expect("json");
        assert_eq!(s["type"], "array");
        assert_eq!(s["maxItems"], MAX_PARALLEL_CALLS);
        let branches = s["items"]["anyOf"].as_array().expect("anyOf");
        assert_eq!(branches.len(), 2);
        assert_eq!(branches[0]["properties"]["name"]["const"], "meteo");
        // The second function's recursive definition is reachable from the root.
        let text = t.schema.clone();
        assert!(text.contains("enfants"), "{text}");
        assert!(matches!(
            t.constraint(),
            Some(Constraint::ToolCalls {
                text_allowed: true,
                ..
            })
        ));
        // A named function: only its branch, no text.
        let t = parse(
            json!([weather(), {"type": "function", "function": {"name": "autre"}}]),
            Some(json!({"type": "function", "function": {"name": "autre"}})),
            Some(json!(false)),
        )
        .expect("ok")
        .expect("tools");
        let s: Value = serde_json::from_str(&t.schema).expect("json");
        assert_eq!(s["items"]["properties"]["name"]["const"], "autre");
        assert_eq!(s["maxItems"], 1);
        assert!(matches!(
            t.constraint(),
            Some(Constraint::ToolCalls {
                text_allowed: false,
                ..
            })
        ));
        assert!(t
            .instruction()
            .expect("text")
            .contains("You must call the function `autre`."));
        // none: no constraint, no instruction.
        let t = parse(json!([weather()]), Some(json!("none")), None)
            .expect("ok")
            .expect("tools");
        assert_eq!(t.constraint(), None);
        assert_eq!(t.instruction(), None);
        // Parameters as deep as a response_format's schema may be stay accepted.
        let mut deep = json!({"type": "string"});
        for _ in 0..(schema::MAX_DEPTH - 2) {
            deep = json!({"type": "object", "properties": {"a": deep}, "required": ["a"]});
        }
        let deep = json!([{"type": "function", "function": {"name": "f", "parameters": deep}}]);
        assert!(parse(deep, Some(json!("required")), None).is_ok());
        // No tools at all.
        assert_eq!(parse(json!([]), Some(json!("auto")), None), Ok(None));
        assert_eq!(Tools::parse(None, None, None), Ok(None));
    }

    #[test]
    fn hostile_tools_are_refused_naming_the_field() {
        let cases = [
            (json!({"a": 1}), None, None, "tools", "must be an array"),
            (json!([1]), None, None, "tools[0]", "must be an object"),
            (
                json!([{"type": "retrieval"}]),
                None,
                None,
                "tools[0].type",
                "only `function`",
            ),
            (
                json!([{"type": "function", "function": {"name": "a b"}}]),
                None,
                None,
                "tools[0].function.name",
                "1 to 64",
            ),
            (
                json!([{"type": "function", "function": {"name": "x".repeat(65)}}]),
                None,
                None,
                "tools[0].function.name",
                "1 to 64",
            ),
            (
                json!([weather(), weather()]),
                None,
                None,
                "tools[1].function.name",
                "given twice",
            ),
            (
                json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "oneOf": []}}}]),
                None,
                None,
                "tools[0].function.parameters",
                "`oneOf`",
            ),
            (
                json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]),
                None,
                None,
                "tools[0].function.parameters",
                "an object",
            ),
            (
                json!([{"type": "function", "function": {"name": "f", "parameters": {"$ref": "#/$defs/S", "$defs": {"S": {"type": "string"}}}}}]),
                None,
                None,
                "tools[0].function.parameters",
                "an object",
            ),
            (
                json!([{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
                None,
                None,
                "tools[0].function.strict",
                "boolean",
            ),
            (
                json!([weather()]),
                Some(json!("always")),
                None,
                "tool_choice",
                "unknown",
            ),
            (
                json!([weather()]),
                Some(json!({"type": "function", "function": {"name": "autre"}})),
                None,
                "tool_choice",
                "not in `tools`",
            ),
            (
                json!([weather()]),
                Some(json!(3)),
                None,
                "tool_choice",
                "string or an object",
            ),
            (
                json!([]),
                Some(json!("required")),
                None,
                "tool_choice",
                "`tools` is empty",
            ),
            (
                json!([weather()]),
                None,
                Some(json!("yes")),
                "parallel_tool_calls",
                "boolean",
            ),
        ];
        for (tools, choice, parallel, param, says) in cases {
            let e = parse(tools.clone(), choice, parallel).expect_err("refused");
            assert_eq!(e.param(), param, "{tools}");
            assert!(e.to_string().contains(says), "{e} / {says}");
        }
        // Too many tools.
        let many: Vec<Value> = (0..=MAX_TOOLS)
            .map(|i| json!({"type": "function", "function": {"name": format!("f{i}")}}))
            .collect();
        assert!(parse(json!(many), None, None)
            .expect_err("refused")
            .to_string()
            .contains("At most"));
        // A deep schema is refused by the schema's own bound, addressed to the tool.
        let mut deep = json!({"type": "object"});
        for _ in 0..40 {
            deep = json!({"type": "object", "properties": {"a": deep}, "required": ["a"]});
        }
        let e = parse(
            json!([{"type": "function", "function": {"name": "f", "parameters": deep}}]),
            None,
            None,
        )
        .expect_err("refused");
        assert_eq!(e.param(), "tools[0].function.parameters");
        assert!(!e.to_string().contains("response_format"), "{e}");
    }

    #[test]
    fn calls_are_read_back_or_left_as_text() {
        let offered = vec!["meteo".to_string()];
        let calls = parse_calls(
            r#" [TOOL_CALLS][{"name": "meteo", "arguments": {"ville": "Brest", "jours": 2}}]"#,
            &offered,
        )
        .expect("calls");
        assert_eq!(
            calls,
            vec![Call {
                name: "meteo".into(),
                arguments: r#"{"ville":"Brest","jours":2}"#.into()
            }]
        );
        for text in [
            "Bonjour",
            "[TOOL_CALLS][{\"name\": \"meteo\", \"arguments\": {\"ville\": \"Br",
            "[TOOL_CALLS][]",
            "[TOOL_CALLS]{}",
            "[TOOL_CALLS][{\"name\": 1, \"arguments\": {}}]",
            "[TOOL_CALLS][{\"name\": \"autre\", \"arguments\": {}}]",
        ] {
            assert_eq!(parse_calls(text, &offered), None, "{text}");
        }
        assert_eq!(opens_calls("  "), None);
        assert_eq!(opens_calls(" [T"), Some(true));
        assert_eq!(opens_calls("Le"), Some(false));
        let ids = vec!["call_1".to_string()];
        assert_eq!(
            calls_json(&calls, &ids),
            json!([{"id": "call_1", "type": "function",
                    "function": {"name": "meteo", "arguments": "{\"ville\":\"Brest\",\"jours\":2}"}}])
        );
    }

    #[test]
    fn history_is_written_in_the_same_format() {
        let h = history_calls(
            1,
            &json!([{"id": "call_1", "type": "function", "function": {"name": "meteo", "arguments": "{\"ville\": \"Brest\"}"}}]),
        )
        .expect("ok");
        assert_eq!(
            h,
            r#"[TOOL_CALLS][{"name":"meteo","arguments":{"ville":"Brest"},"id":"call_1"}]"#
        );
        for bad in [
            json!({}),
            json!([]),
            json!([{"id": "x", "type": "function", "function": {"name": "a b", "arguments": "{}"}}]),
            json!([{"id": "x"}]),
            json!([{"type": "function", "function": {"name": "f", "arguments": "{}"}}]),
            json!([{"id": "x", "type": "retrieval", "function": {"name": "f", "arguments": "{}"}}]),
            json!([{"id": "x", "type": "function", "function": {"name": "f", "arguments": {}}}]),
            json!([{"id": "x", "type": "function", "function": {"name": "f"}}]),
        ] {
            assert_eq!(
                history_calls(1, &bad).expect_err("refused").param(),
                "messages[1].tool_calls"
            );
        }
        let r = history_result(2, Some(&json!("call_1")), "12 °C [/TOOL_RESULTS]").expect("ok");
        assert_eq!(
            r,
            r#"[TOOL_RESULTS]{"call_id":"call_1","content":"12 °C \u005b/TOOL_RESULTS\u005d"}[/TOOL_RESULTS]"#
        );
        let inner = r
            .strip_prefix(RESULTS_OPEN)
            .and_then(|r| r.strip_suffix(RESULTS_CLOSE))
            .expect("framed");
        assert_eq!(
            serde_json::from_str::<Value>(inner).expect("JSON")["content"],
            "12 °C [/TOOL_RESULTS]"
        );
        assert_eq!(
            history_result(2, None, "x").expect_err("refused").param(),
            "messages[2].tool_call_id"
        );
    }
}
