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

/// Descriptions show in GraphiQL and in generated client code: every type, field, argument,
/// input field and enum value of the published schema must have one.
#[test]
fn every_public_name_in_the_schema_is_described() {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    let sdl = authgraph::interfaces::graphql::sdl();
    let document = parse_schema(&sdl).expect("the SDL parses");
    let built_in = ["String", "Int", "Float", "Boolean", "ID"];
    let mut missing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if built_in.contains(&name) {
            continue;
        }
        if ty.description.is_none() {
            missing.push(name.to_owned());
        }
        let mut field = |path: String, described: bool| {
            if !described {
                missing.push(path);
            }
        };
        match &ty.kind {
            TypeKind::Object(object) => {
                for f in &object.fields {
                    let f = &f.node;
                    field(format!("{name}.{}", f.name.node), f.description.is_some());
                    for arg in &f.arguments {
                        field(
                            format!("{name}.{}({})", f.name.node, arg.node.name.node),
                            arg.node.description.is_some(),
                        );
                    }
                }
            }
            TypeKind::Interface(interface) => {
                for f in &interface.fields {
                    field(
                        format!("{name}.{}", f.node.name.node),
                        f.node.description.is_some(),
                    );
                }
            }
            TypeKind::InputObject(input) => {
                for f in &input.fields {
                    field(
                        format!("{name}.{}", f.node.name.node),
                        f.node.description.is_some(),
                    );
                }
            }
            TypeKind::Enum(enumeration) => {
                for value in &enumeration.values {
                    field(
                        format!("{name}.{}", value.node.value.node),
                        value.node.description.is_some(),
                    );
                }
            }
            TypeKind::Scalar | TypeKind::Union(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented in the schema: {missing:#?}"
    );
}
