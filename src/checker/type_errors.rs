//! serde's type errors in a Lua author's words, naming the parameter:
//! `invalid type: string "two", expected u64` on a step whose `peerCount`
//! is `"two"` becomes `peerCount: expected a whole number, got the string
//! "two"`. serde does not say which field failed, so the parameter is the
//! one in the step's table holding the value serde names.

use mlua::Value;

/// The friendlier form of `message`, or `message` as it is when it is not a
/// type error.
pub fn explain(table: &Value, message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_string();
    };
    let Some((got, expected)) = rest.split_once(", expected ") else {
        return message.to_string();
    };
    let seen = Seen::parse(got);
    let words = format!(
        "expected {}, got {}",
        expected_words(expected),
        seen.words()
    );
    let mut path = Vec::new();
    match find(table, &seen, &mut path) {
        true => format!("{}: {words}", path.join(".")),
        false => words,
    }
}

/// The value serde reports, as far as it can be matched in the table.
#[derive(Debug, PartialEq)]
enum Seen {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
    Other(String),
}

impl Seen {
    fn parse(got: &str) -> Self {
        let ticked = |p: &str| got.strip_prefix(p).map(|s| s.trim_matches('`').to_string());
        if let Some(s) = got.strip_prefix("string ") {
            return Seen::Str(s.trim_matches('"').to_string());
        }
        if let Some(i) = ticked("integer ").and_then(|s| s.parse().ok()) {
            return Seen::Int(i);
        }
        if let Some(b) = ticked("boolean ").and_then(|s| s.parse().ok()) {
            return Seen::Bool(b);
        }
        if let Some(f) = ticked("floating point ").and_then(|s| s.parse().ok()) {
            return Seen::Float(f);
        }
        Seen::Other(got.to_string())
    }

    fn words(&self) -> String {
        match self {
            Seen::Str(s) => format!("the string {s:?}"),
            Seen::Int(i) => format!("the number {i}"),
            Seen::Bool(b) => format!("{b}"),
            Seen::Float(f) => format!("the number {f}"),
            Seen::Other(o) if o == "map" => "a table".into(),
            Seen::Other(o) if o == "sequence" => "a list".into(),
            Seen::Other(o) => o.clone(),
        }
    }

    fn is(&self, v: &Value) -> bool {
        match (self, v) {
            (Seen::Str(s), Value::String(l)) => l.to_string_lossy() == *s,
            (Seen::Int(i), Value::Integer(l)) => l == i,
            (Seen::Bool(b), Value::Boolean(l)) => l == b,
            (Seen::Float(f), Value::Number(l)) => l == f,
            _ => false,
        }
    }
}

fn expected_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number".into()
        }
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "a table".into(),
        other => other.trim_start_matches("struct ").to_string(),
    }
}

/// Finds the (first, by key order) field path holding `seen`.
fn find(v: &Value, seen: &Seen, path: &mut Vec<String>) -> bool {
    let Value::Table(t) = v else {
        return false;
    };
    let mut pairs: Vec<(String, Value)> = t
        .clone()
        .pairs::<Value, Value>()
        .filter_map(|p| p.ok())
        .map(|(k, v)| (k.to_string().unwrap_or_default(), v))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in pairs {
        path.push(k);
        if seen.is(&v) || find(&v, seen, path) {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(lua_table: &str, message: &str) -> String {
        let lua = mlua::Lua::new();
        match lua.load(lua_table).eval::<Value>() {
            Ok(v) => explain(&v, message),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn names_the_parameter_in_lua_words() {
        assert_eq!(
            explained(
                "{ peer = \"c\", game = \"g\", peerCount = \"two\" }",
                "invalid type: string \"two\", expected u64"
            ),
            "peerCount: expected a whole number, got the string \"two\""
        );
        assert_eq!(
            explained(
                "{ name = \"a\", readonly = 1 }",
                "invalid type: integer `1`, expected a boolean"
            ),
            "readonly: expected true or false, got the number 1"
        );
        assert_eq!(
            explained(
                "{ on = { peer = 5 } }",
                "invalid type: integer `5`, expected a string"
            ),
            "on.peer: expected a string, got the number 5"
        );
    }

    #[test]
    fn other_messages_pass_through() {
        assert_eq!(
            explained("{}", "missing field `peer`"),
            "missing field `peer`"
        );
    }
}
