#if canImport(Glibc)
import Glibc
#endif

/// Why a text file (a token or a secret mounted as a file) could not be read, in a few
/// words for an error that names the file: never its content.
public func unreadableFileReason(_ path: String) -> String {
    var status = stat()
    guard stat(path, &status) == 0 else { return errno == ENOENT ? "no such file" : String(cString: strerror(errno)) }
    if status.st_mode & S_IFMT == S_IFDIR { return "a directory, not a file" }
    return access(path, R_OK) == 0 ? "not UTF-8 text" : "permission denied"
}
