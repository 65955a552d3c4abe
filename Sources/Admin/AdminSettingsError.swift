/// Why the admin server cannot start as configured; each names the settings to change.
/// The token's value never appears here, only the file's path.
public enum AdminSettingsError: Error, Hashable, CustomStringConvertible {
    case badListenAddress(String, reason: String)
    /// A non-loopback `admin.listen` without `admin.token_file`.
    case tokenRequired(listen: String)
    case tokenUnreadable(path: String, reason: String)
    case tokenEmpty(path: String)
    /// The server could not listen, or stopped: most often the address is in use.
    case serverFailed(listen: String, reason: String)

    public var description: String {
        switch self {
        case .badListenAddress(let text, let reason):
            "admin.listen = \"\(text)\": \(reason)"
        case .tokenRequired(let listen):
            "admin.listen = \"\(listen)\" is not a loopback address and admin.token_file is not set: "
                + "set admin.token_file to a file holding the bearer token, or listen on 127.0.0.1"
        case .tokenUnreadable(let path, let reason):
            "admin.token_file: cannot read \(path): \(reason)"
        case .tokenEmpty(let path):
            "admin.token_file: \(path) is empty"
        case .serverFailed(let listen, let reason):
            "the admin server on admin.listen = \"\(listen)\" failed: \(reason); set another address "
                + "(CHANGERELAY_ADMIN_LISTEN=127.0.0.1:0 takes a free port) or \"off\""
        }
    }
}
