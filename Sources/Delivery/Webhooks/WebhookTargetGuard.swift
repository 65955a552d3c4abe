/// The SSRF guard as webhook tries use it: a checked URL gives the address to connect to
/// (the one that was checked, so DNS rebinding cannot slip through); a refused one, the
/// reason, which names the host, the address and `webhooks.allow_private_targets`. Names
/// are looked up through `HostLookups`, so no caller waits on DNS on its own thread.
struct WebhookTargetGuard: Sendable {
    private let guarding: TargetGuard

    init(allowPrivateTargets: Bool, lookups: HostLookups) {
        guarding = TargetGuard(allowPrivateTargets: allowPrivateTargets, lookups: lookups)
    }

    func check(_ url: String) async -> Result<String?, TargetRefusal> {
        do throws(TargetRefused) {
            return .success(try await guarding.check(url: url).pinnedAddress)
        } catch {
            return .failure(TargetRefusal(reason: error.description, isRetryable: error.isRetryable))
        }
    }
}
