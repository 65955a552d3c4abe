/// The SSRF guard as the dispatcher applies it to webhook targets.
enum WebhookTargetGuard {
    static func check(allowPrivateTargets: Bool) -> @Sendable (String) -> Result<String?, TargetRefusal> {
        { _ in .success(nil) }
    }
}
