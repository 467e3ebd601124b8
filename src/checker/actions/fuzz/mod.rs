//! Fuzzing actions, cut four ways: `combinations` generates control-fuzz
//! inputs; `control` runs `fuzzCommand` and `fuzzAllCommands` against a
//! peer's control commands; `wire` runs `fuzzWire`, hostile wire-protocol
//! messages over QUIC (the messages themselves are `wire_cases`); `aftermath` is the end all three share (the target
//! survived, changed nothing outside its games dir, and still serves a
//! normal download to a fresh probe peer).

pub mod aftermath;
pub mod combinations;
pub mod control;
pub mod wire;
pub mod wire_cases;

#[cfg(test)]
mod tests {
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn fuzz_steps_load_from_lua_with_defaults() -> Result<(), String> {
        use crate::checker::registry::Action;
        use crate::checker::script::load_str;
        let src = "scenario {\n fuzzAllCommands { peer = \"s\", maxLen = 2, choices = { \"a\", 0, true, { k = 1 } }, skip = { \"connect\" } },\n fuzzWire { target = \"s\" },\n}";
        let s = load_str("t.lua", src, Path::new("t.lua"), 0).map_err(|e| e.0)?;
        match &s.steps[0].action {
            Action::FuzzAllCommands(f) => {
                assert_eq!(
                    f.choices,
                    vec![json!("a"), json!(0), json!(true), json!({ "k": 1 })]
                );
                assert_eq!((f.min_len, f.max_len, f.limit, f.seed), (0, 2, None, None));
                assert_eq!(f.skip, vec!["connect".to_string()]);
            }
            other => return Err(format!("{other:?}")),
        }
        match &s.steps[1].action {
            Action::FuzzWire(w) => assert_eq!((w.cases, w.seed), (200, 0)),
            other => return Err(format!("{other:?}")),
        }
        let bad = "scenario {\n fuzzCommand { peer = \"s\", cmd = \"x\", choices = {}, maxLen = 1, max_len = 2 },\n}";
        let err = load_str("t.lua", bad, Path::new("t.lua"), 0)
            .map(|_| ())
            .err();
        assert!(
            err.as_ref().is_some_and(|e| e
                .0
                .contains("t.lua:2: fuzzCommand: unknown field `max_len`")),
            "{err:?}"
        );
        Ok(())
    }
}
