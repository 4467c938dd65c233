//! The monorepo's Rust side: greetings.

/// The greeting for `name`.
pub fn greeting(name: &str) -> String {
    format!("hello, {name}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn greets_by_name() {
        assert_eq!(super::greeting("api"), "hello, api");
    }
}
