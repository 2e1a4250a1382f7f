//! Random GraphQL documents, generated from the schema, never show a partner more than its agreement allows.

use super::*;

/// A small deterministic generator, so a failing document can be reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The named type under any list and non-null wrappers, and whether the outer type is non-null.
fn named(ty: &Value) -> (&str, &str) {
    let mut t = ty;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["name"].as_str().unwrap(), t["kind"].as_str().unwrap())
}

struct Generator<'a> {
    types: &'a [Value],
    rng: Rng,
    ids: Vec<String>,
}

impl Generator<'_> {
    fn object(&self, name: &str) -> &Value {
        self.types.iter().find(|t| t["name"] == name).unwrap()
    }

    /// A value for an argument, or `None` when this generator cannot make one.
    fn arg(&mut self, name: &str, ty: &Value) -> Option<String> {
        let (tname, _) = named(ty);
        match (name, tname) {
            ("id" | "caseId", _) => {
                let id = self.ids[self.rng.below(self.ids.len())].clone();
                Some(format!("\"{id}\""))
            }
            ("purpose", _) => Some("\"crime_prevention\"".into()),
            ("first", "Int") => Some(format!("{}", 1 + self.rng.below(5))),
            ("filter", "CaseFilterInput") => Some(
                [
                    "{status: OPEN}",
                    "{caseType: \"FOOD\"}",
                    "{fields: [{code: \"risk\", value: \"low\"}]}",
                    "{fields: [{code: \"symptoms\", value: \"x\"}]}",
                    "{submitterEmail: \"a@example.org\"}",
                ][self.rng.below(5)]
                .into(),
            ),
            _ => None,
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> Option<String> {
        let fields: Vec<Value> = self.object(type_name)["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut parts = Vec::new();
        for f in &fields {
            if !self.rng.chance(55) {
                continue;
            }
            let name = f["name"].as_str().unwrap();
            let mut args = Vec::new();
            let mut possible = true;
            for a in f["args"].as_array().unwrap() {
                let required = a["type"]["kind"] == "NON_NULL";
                let aname = a["name"].as_str().unwrap();
                if required || self.rng.chance(50) {
                    match self.arg(aname, &a["type"]) {
                        Some(v) => args.push(format!("{aname}: {v}")),
                        None if required => possible = false,
                        None => {}
                    }
                }
            }
            if !possible {
                continue;
            }
            let (tname, kind) = named(&f["type"]);
            let inner = match kind {
                "OBJECT" if depth < 4 => match self.selection(tname, depth + 1) {
                    Some(s) => format!(" {{ {s} }}"),
                    None => continue,
                },
                "OBJECT" | "INTERFACE" | "UNION" => continue,
                _ => String::new(),
            };
            let alias = if self.rng.chance(20) {
                format!("a{}: ", self.rng.below(1000))
            } else {
                String::new()
            };
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let field = format!("{alias}{name}{args}{inner}");
            if self.rng.chance(15) {
                parts.push(format!("... on {type_name} {{ {field} }}"));
            } else {
                parts.push(field);
            }
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

#[tokio::test]
async fn random_documents_never_show_a_partner_more_than_its_agreement() {
    let s = TestServer::start_with("development = true", SHARING).await;
    let (shared, _) = create_food(&s, "low", "shared case").await;
    let (unshared, _) = create_food(&s, "low", UNSHARED).await;
    share(&s, &shared, "police").await;
    let officer = s.token(&[Role::Officer]);
    note_on(&s, &officer, &unshared, UNSHARED).await;
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let (_, schema) = s
        .gql(
            Some(&officer),
            &format!(
                "{{ __schema {{ types {{ name kind fields {{ name args {{ name type {{ {type_ref} }} }} type {{ {type_ref} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let types = data(&schema)["__schema"]["types"]
        .as_array()
        .unwrap()
        .clone();
    let police = partner(&s, "police");
    let mut generator = Generator {
        types: &types,
        rng: Rng(0x5eed_1234_abcd_0001),
        ids: vec![shared.clone(), unshared.clone()],
    };
    let (mut answered, mut with_case) = (0, 0);
    for n in 0..300 {
        let Some(selection) = generator.selection("QueryRoot", 1) else {
            continue;
        };
        let document = format!("query Generated{n} {{ {selection} }}");
        let (_, body) = s.gql(Some(&police), &document, json!({})).await;
        let text = body.to_string();
        for marker in [PERSONAL, SENSITIVE, UNSHARED] {
            assert!(
                !text.contains(marker),
                "document {n} showed `{marker}`:\n{document}\n{text}"
            );
        }
        if !body["data"].is_null() {
            answered += 1;
        }
        if text.contains("shared case") {
            with_case += 1;
        }
    }
    // The generator must actually reach the data, or the test proves nothing.
    assert!(answered > 50, "only {answered} documents answered");
    assert!(
        with_case > 10,
        "only {with_case} documents reached the shared case"
    );
    s.stop().await;
}
