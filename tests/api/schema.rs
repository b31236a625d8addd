/// Clients generate code from `schema.graphql`; it must be exactly what the server serves.
#[test]
fn schema_graphql_matches_the_served_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql exists");
    let served = authgraph::interfaces::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql is out of date; regenerate it with `cargo run -- schema > schema.graphql`"
    );
}
