#if canImport(Glibc)
import PlannedEffects
import Glibc
#endif
import CCurl

// Each libcurl pointer has exactly one owner, a final class that frees it in deinit.
// They are @unchecked Sendable only so they can be handed to the client thread; after
// that they are used on that thread alone (curl_multi_wakeup, which libcurl documents as
// callable from any thread, is the one exception).

/// `curl_global_init`, once per process, before the first handle.
enum CurlGlobal {
    static let initialized: Bool = cr_global_init() == CURLE_OK
}

/// A `CURL *` easy handle and its error buffer.
final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    /// CURLOPT_ERRORBUFFER storage, `CURL_ERROR_SIZE` bytes, alive as long as the handle.
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard CurlGlobal.initialized, let raw = curl_easy_init() else { return nil }
        self.raw = raw
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// Back to the state of a new handle, keeping its error buffer. libcurl keeps the
    /// connection and DNS caches, which live in the multi handle anyway.
    func reset() {
        curl_easy_reset(raw)
        errorBuffer[0] = 0
    }

    var errorMessage: String {
        errorBuffer[Int(CURL_ERROR_SIZE) - 1] = 0
        return String(cString: errorBuffer)
    }

    @discardableResult
    func set(_ option: CURLoption, _ value: Int) -> CURLcode { cr_easy_setopt_long(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, offset value: Int64) -> CURLcode { cr_easy_setopt_off_t(raw, option, curl_off_t(value)) }
    @discardableResult
    func set(_ option: CURLoption, _ value: String) -> CURLcode { cr_easy_setopt_string(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) -> CURLcode { cr_easy_setopt_pointer(raw, option, value) }
    @discardableResult
    func set(_ option: CURLoption, list: HeaderList) -> CURLcode { cr_easy_setopt_slist(raw, option, list.raw) }

    func infoLong(_ info: CURLINFO) -> Int {
        var value = 0
        return cr_easy_getinfo_long(raw, info, &value) == CURLE_OK ? value : 0
    }

    func infoOffset(_ info: CURLINFO) -> Int64 {
        var value: curl_off_t = 0
        return cr_easy_getinfo_off_t(raw, info, &value) == CURLE_OK ? Int64(value) : 0
    }

    func infoString(_ info: CURLINFO) -> String? {
        var value: UnsafePointer<CChar>?
        guard cr_easy_getinfo_string(raw, info, &value) == CURLE_OK, let value else { return nil }
        return String(cString: value)
    }
}

/// A `CURLM *` multi handle: the event loop and the shared connection cache.
final class MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    init?() {
        guard CurlGlobal.initialized, let raw = curl_multi_init() else { return nil }
        self.raw = raw
    }

    /// Every easy handle must have been removed first (the client thread does so on exit).
    deinit { curl_multi_cleanup(raw) }

    @discardableResult
    func set(_ option: CURLMoption, _ value: Int) -> CURLMcode { cr_multi_setopt_long(raw, option, value) }

    /// Interrupts `curl_multi_poll`; callable from any thread.
    func wakeup() { _ = curl_multi_wakeup(raw) }
}

/// A `struct curl_slist *` (request headers, CONNECT_TO entries). libcurl does not copy
/// lists, so the list lives as long as the transfer that uses it.
final class HeaderList: @unchecked Sendable {
    private(set) var raw: UnsafeMutablePointer<curl_slist>?

    init() {}

    deinit { curl_slist_free_all(raw) }

    /// Appends a copy of `line`. Returns false when libcurl is out of memory.
    @discardableResult
    func append(_ line: String) -> Bool {
        guard let next = curl_slist_append(raw, line) else { return false }
        raw = next
        return true
    }
}

/// A value behind a pthread mutex. (Not Synchronization.Mutex: on Linux that lock is
/// invisible to ThreadSanitizer, which then reports every access it guards.)
final class Locked<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
