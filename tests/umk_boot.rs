mod support;

#[test]
fn probe_nested_build() {
    let bin = support::umk_binary();
    assert!(bin.is_file());
}
