/// The SSRF guard as webhook tries use it: a checked URL gives the address to connect to
/// (the one that was checked, so DNS rebinding cannot slip through); a refused one, the
/// reason, which names the host, the address and `webhooks.allow_private_targets`.
enum WebhookTargetGuard {
    static func check(allowPrivateTargets: Bool) -> @Sendable (String) -> Result<String?, TargetRefusal> {
        let guarding = TargetGuard(allowPrivateTargets: allowPrivateTargets)
        return { url in
            do throws(TargetRefused) {
                return .success(try guarding.check(url: url).pinnedAddress)
            } catch {
                return .failure(TargetRefusal(reason: error.description, isRetryable: error.isRetryable))
            }
        }
    }
}
