//! The `lwicontexts` custom context: the consumer's parser (`check_lwicontexts`) and the
//! producer's builder (`insert_json` + `to_lwicontexts`), checked against each other.
//!
//! Oracles: no panic; whatever the builder accepts serializes to a string the parser accepts
//! with zero problems and reads back as the same context; and whatever the parser accepts
//! without problems, the builder accepts entry by entry and builds the same context.
#![no_main]

use chat_auth_shared::CustomContext;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (parsed, problems) = CustomContext::check_lwicontexts(&text);
    if problems.is_empty() {
        // A clean parse re-serializes to something that parses clean and identical.
        let again = parsed.to_lwicontexts();
        let (reparsed, reproblems) = CustomContext::check_lwicontexts(&again);
        assert!(reproblems.is_empty(), "{again:?}: {reproblems:?}");
        assert_eq!(reparsed, parsed, "{again:?}");
    } else {
        for p in &problems {
            assert!(
                p.code.as_str().starts_with("context_"),
                "unexpected code {}",
                p.code
            );
        }
    }

    let Ok(map) = serde_json::from_str::<Map<String, Value>>(&text) else {
        return;
    };
    let mut built = CustomContext::new();
    let mut all_inserted = true;
    for (name, value) in &map {
        if built.insert_json(name, value).is_err() {
            all_inserted = false;
        }
    }
    let lwicontexts = built.to_lwicontexts();
    let (round, round_problems) = CustomContext::check_lwicontexts(&lwicontexts);
    assert!(
        round_problems.is_empty(),
        "built context {lwicontexts:?} is refused: {round_problems:?}"
    );
    assert_eq!(round, built, "{lwicontexts:?} does not round-trip");
    if problems.is_empty() {
        // The parser accepted the input, so the builder must accept every entry and agree.
        assert!(all_inserted, "parser accepted what insert_json refuses");
        assert_eq!(built, parsed);
    }
});
