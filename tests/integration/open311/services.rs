//! Service discovery: the list and each definition, in XML and JSON, against the spec.

use super::*;

#[tokio::test]
async fn services_and_definitions_in_xml_and_json() {
    let o = Open311::start().await;
    let (status, body) = o.get("services.xml").await;
    assert_eq!(status, 200, "{body}");
    let root = parse(&body);
    assert_has_spec_elements(&root, "get_services.response.xml");
    let codes: Vec<&str> = root
        .children("service")
        .filter_map(|s| s.text_of("service_code"))
        .collect();
    assert_eq!(codes, ["001", "FLY", "POT"]);

    let (status, body) = o.get("services.json?jurisdiction_id=").await;
    assert_eq!(
        status, 200,
        "an empty jurisdiction_id counts as absent: {body}"
    );
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json[2]["service_code"], "POT");
    assert_eq!(json[2]["metadata"], true);

    let (status, body) = o.get("services/POT.xml").await;
    assert_eq!(status, 200);
    let def = parse(&body);
    assert_has_spec_elements(&def, "get_service_definition.response.xml");
    let attrs: Vec<&Element> = def
        .child("attributes")
        .unwrap()
        .children("attribute")
        .collect();
    assert_eq!(attrs[0].text_of("code"), Some("depth_cm"));
    assert_eq!(attrs[0].text_of("required"), Some("true"));
    assert_eq!(attrs[1].text_of("datatype"), Some("singlevaluelist"));
    let keys: Vec<&str> = attrs[1]
        .child("values")
        .unwrap()
        .children("value")
        .filter_map(|v| v.text_of("key"))
        .collect();
    assert_eq!(keys, ["carriageway", "footway"]);
    let fms = attrs.last().unwrap();
    assert_eq!(fms.text_of("code"), Some("fixmystreet_id"));
    assert_eq!(fms.text_of("automated"), Some("server_set"));
    assert_eq!(fms.text_of("variable"), Some("false"));

    let (status, body) = o.get("services/POT.json").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["attributes"][1]["values"][0]["key"], "carriageway");

    let (status, body) = o.get("services/NOPE.xml").await;
    assert_eq!(status, 404);
    let errors = parse(&body);
    assert_has_spec_elements(&errors, "error_403.response.http.xml");
    assert_eq!(errors.child("error").unwrap().text_of("code"), Some("404"));

    let (status, body) = o.get("services.html").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = o.get("discovery.json").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["endpoints"][0]["formats"][1], "application/json");
}
