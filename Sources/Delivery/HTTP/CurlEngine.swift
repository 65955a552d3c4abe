#if canImport(Glibc)
import PlannedEffects
import Glibc
#endif
import CCurl
import Core

/// The client thread: owns the multi handle's use, every easy handle and every transfer.
/// Nothing here is touched by another thread.
final class CurlEngine {
    private let core: ClientCore
    private let multi: MultiHandle
    private let configuration: HTTPClient.Configuration
    private let maxConcurrent: Int
    private var pending = FIFO<HTTPSubmission>()
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    /// Reset easy handles ready for the next transfer.
    private var idle: [EasyHandle] = []

    init(core: ClientCore) {
        self.core = core
        multi = core.multi
        configuration = core.configuration
        maxConcurrent = core.configuration.maxConcurrentTransfers
    }

    func run() {
        var closing = false
        var drainDeadline: ContinuousClock.Instant?
        while true {
            let inbox = core.take()
            for submission in inbox.submissions {
                if submission.cancelled.load(ordering: .sequentiallyConsistent) {
                    finish(submission, .failure(submission.error(.cancelled, "the calling task was cancelled")))
                } else {
                    submission.state = .queued
                    pending.append(submission)
                }
            }
            for submission in inbox.cancellations { cancel(submission, kind: .cancelled) }
            if inbox.closing && !closing {
                closing = true
                drainDeadline = inbox.drainDeadline
            }
            if closing, let deadline = drainDeadline, ContinuousClock.now >= deadline {
                cancelEverything()
                break
            }

            startPending()
            var running: Int32 = 0
            _ = curl_multi_perform(multi.raw, &running)
            collectCompleted()

            if closing && active.isEmpty && pending.isEmpty { break }
            // Completions freed slots for queued requests: start them without sleeping.
            if !pending.isEmpty && active.count < maxConcurrent { continue }

            var timeoutMs: Int32 = 1000
            if closing, let deadline = drainDeadline {
                let remaining = (deadline - ContinuousClock.now).wholeMilliseconds
                timeoutMs = Int32(clamping: max(0, min(Int64(timeoutMs), remaining)))
            }
            _ = curl_multi_poll(multi.raw, nil, 0, timeoutMs, nil)
        }
        // Every easy handle leaves the multi handle before either is cleaned up.
        cancelEverything()
        idle.removeAll()
    }

    // MARK: Transfers

    private func startPending() {
        while active.count < maxConcurrent, let submission = pending.popFirst() {
            guard case .queued = submission.state else { continue }  // cancelled while queued
            start(submission)
        }
    }

    private func start(_ submission: HTTPSubmission) {
        guard let easy = idle.popLast() ?? EasyHandle() else {
            finish(submission, .failure(submission.error(.other(curlCode: Int(CURLE_OUT_OF_MEMORY.rawValue)), "curl_easy_init failed")))
            return
        }
        let transfer = CurlTransfer(submission: submission, easy: easy, maxHeaderBytes: configuration.maxResponseHeaderBytes)
        if let failure = transfer.configure(configuration) {
            recycle(easy)
            finish(submission, .failure(failure))
            return
        }
        let added = curl_multi_add_handle(multi.raw, easy.raw)
        guard added == CURLM_OK else {
            recycle(easy)
            let message = String(cString: curl_multi_strerror(added))
            finish(submission, .failure(submission.error(.other(curlCode: Int(added.rawValue)), message)))
            return
        }
        active[easy.raw] = transfer
        submission.state = .active(transfer)
    }

    private func collectCompleted() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi.raw, &left) {
            guard cr_msg_is_done(message) != 0, let raw = cr_msg_easy_handle(message) else { continue }
            // The message does not survive curl_multi_remove_handle: read it first.
            let code = cr_msg_result(message)
            guard let transfer = active.removeValue(forKey: raw) else { continue }
            _ = curl_multi_remove_handle(multi.raw, raw)
            let result = transfer.outcome(code)
            recycle(transfer.easy)
            finish(transfer.submission, result)
        }
    }

    private func cancel(_ submission: HTTPSubmission, kind: HTTPError.Kind) {
        let message = kind == .clientClosed ? "the client was closed before the response arrived" : "the calling task was cancelled"
        switch submission.state {
        case .submitted, .done:
            return  // not here yet (its cancelled flag is checked on arrival), or finished
        case .queued:
            finish(submission, .failure(submission.error(kind, message)))
        case .active(let transfer):
            active.removeValue(forKey: transfer.easy.raw)
            _ = curl_multi_remove_handle(multi.raw, transfer.easy.raw)
            recycle(transfer.easy)
            finish(submission, .failure(submission.error(kind, message)))
        }
    }

    private func cancelEverything() {
        for transfer in Array(active.values) { cancel(transfer.submission, kind: .clientClosed) }
        while let submission = pending.popFirst() { cancel(submission, kind: .clientClosed) }
        // Submissions that raced with close: refused from now on, so this is the last batch.
        for submission in core.take().submissions {
            finish(submission, .failure(submission.error(.clientClosed, "the client was closed")))
        }
    }

    private func recycle(_ easy: EasyHandle) {
        easy.reset()
        if idle.count < maxConcurrent { idle.append(easy) }
    }

    private func finish(_ submission: HTTPSubmission, _ result: Result<HTTPResponse, HTTPError>) {
        core.inFlight.subtract(1, ordering: .relaxed)  // before the caller resumes and looks
        submission.finish(result)
    }
}

/// One request on one easy handle, from `curl_multi_add_handle` to completion.
final class CurlTransfer {
    enum Abort { case bodyLimit, headersTooLarge, resend }

    let submission: HTTPSubmission
    let easy: EasyHandle
    private let maxHeaderBytes: Int
    private let bodyLimit: Int
    private let discardOversizedBody: Bool
    /// Lists libcurl reads during the transfer: owned here until it ends.
    private let headerList = HeaderList()
    private var connectTo: HeaderList?

    private var headers: [(String, String)] = []
    private var body: [UInt8] = []
    private var truncated = false
    /// Body bytes past the limit read and thrown away (`OversizedBodyPolicy.discard`).
    private var discarded = 0
    private var headerBytes = 0
    private var aborted: Abort?
    /// The final response's headers have ended: what follows is its body.
    private var headersComplete = false
    /// How many times libcurl was about to send the request (`CURLOPT_PREREQFUNCTION`).
    private var sends = 0

    init(submission: HTTPSubmission, easy: EasyHandle, maxHeaderBytes: Int) {
        self.submission = submission
        self.easy = easy
        self.maxHeaderBytes = maxHeaderBytes
        bodyLimit = submission.request.responseBodyLimit
        discardOversizedBody = submission.request.oversizedBody == .discard
    }

    /// Sets every option for the request; an error when libcurl refuses one.
    func configure(_ configuration: HTTPClient.Configuration) -> HTTPError? {
        let request = submission.request
        var failed: (CURLoption, CURLcode)?
        func check(_ option: CURLoption, _ code: CURLcode) {
            if code != CURLE_OK && failed == nil { failed = (option, code) }
        }

        check(CURLOPT_ERRORBUFFER, easy.set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(easy.errorBuffer)))
        check(CURLOPT_URL, easy.set(CURLOPT_URL, request.url))
        check(CURLOPT_PROTOCOLS_STR, easy.set(CURLOPT_PROTOCOLS_STR, "http,https"))
        check(CURLOPT_REDIR_PROTOCOLS_STR, easy.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        check(CURLOPT_FOLLOWLOCATION, easy.set(CURLOPT_FOLLOWLOCATION, 0))
        check(CURLOPT_NOSIGNAL, easy.set(CURLOPT_NOSIGNAL, 1))
        check(CURLOPT_PROXY, easy.set(CURLOPT_PROXY, ""))  // never a proxy from the environment
        check(CURLOPT_CONNECTTIMEOUT_MS, easy.set(CURLOPT_CONNECTTIMEOUT_MS, Int(max(1, request.connectTimeout.wholeMilliseconds))))
        check(CURLOPT_TIMEOUT_MS, easy.set(CURLOPT_TIMEOUT_MS, Int(max(1, request.timeout.wholeMilliseconds))))
        check(CURLOPT_MAXAGE_CONN, easy.set(CURLOPT_MAXAGE_CONN, Int(max(1, configuration.maxIdleConnectionAge.components.seconds))))
        check(CURLOPT_USERAGENT, easy.set(CURLOPT_USERAGENT, configuration.userAgent))
        if let caBundle = configuration.caBundlePath {
            check(CURLOPT_CAINFO, easy.set(CURLOPT_CAINFO, caBundle))
        }

        let context = Unmanaged.passUnretained(self).toOpaque()
        check(CURLOPT_WRITEFUNCTION, cr_easy_setopt_writefunction(easy.raw) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
        })
        check(CURLOPT_WRITEDATA, easy.set(CURLOPT_WRITEDATA, pointer: context))
        check(CURLOPT_HEADERFUNCTION, cr_easy_setopt_headerfunction(easy.raw) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receiveHeader(UnsafeRawBufferPointer(start: data, count: size * count))
        })
        check(CURLOPT_HEADERDATA, easy.set(CURLOPT_HEADERDATA, pointer: context))
        check(CURLOPT_PREREQFUNCTION, cr_easy_setopt_prereqfunction(easy.raw) { context, _, _, _, _ in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.aboutToSend()
        })
        check(CURLOPT_PREREQDATA, easy.set(CURLOPT_PREREQDATA, pointer: context))

        // Method and body.
        let method = request.method
        if method == "HEAD" {
            check(CURLOPT_NOBODY, easy.set(CURLOPT_NOBODY, 1))
        } else if method == "GET" && request.body.isEmpty {
            check(CURLOPT_HTTPGET, easy.set(CURLOPT_HTTPGET, 1))
        } else if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) {
            check(CURLOPT_POSTFIELDSIZE_LARGE, easy.set(CURLOPT_POSTFIELDSIZE_LARGE, offset: Int64(request.body.count)))
            // COPYPOSTFIELDS copies the bytes (POSTFIELDSIZE set first, so binary is fine).
            let code = request.body.withUnsafeBytes { bytes -> CURLcode in
                var empty: UInt8 = 0
                return withUnsafeMutablePointer(to: &empty) { emptyPointer in
                    let pointer = bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? UnsafeMutableRawPointer(emptyPointer)
                    return easy.set(CURLOPT_COPYPOSTFIELDS, pointer: pointer)
                }
            }
            check(CURLOPT_COPYPOSTFIELDS, code)
            if method != "POST" { check(CURLOPT_CUSTOMREQUEST, easy.set(CURLOPT_CUSTOMREQUEST, method)) }
        } else {
            check(CURLOPT_CUSTOMREQUEST, easy.set(CURLOPT_CUSTOMREQUEST, method))
        }

        // Headers.
        var hasExpect = false, hasContentType = false
        for (name, value) in request.headers {
            if asciiCaseInsensitiveEquals(name, "Expect") { hasExpect = true }
            if asciiCaseInsensitiveEquals(name, "Content-Type") { hasContentType = true }
            // "Name;" is libcurl's way to send a header with an empty value.
            headerList.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        if !hasExpect { headerList.append("Expect:") }  // no 100-continue round trip
        if !hasContentType && !request.body.isEmpty {
            headerList.append("Content-Type:")  // not libcurl's form-urlencoded default
        }
        check(CURLOPT_HTTPHEADER, easy.set(CURLOPT_HTTPHEADER, list: headerList))

        if let address = request.pinnedAddress {
            let list = HeaderList()
            // IPv6 in brackets; a zone stays unencoded (`[fe80::1%eth0]`): libcurl hands the
            // bracketed text to getaddrinfo, which reads `%eth0` but not `%25eth0`.
            let host = address.contains(":") ? "[\(address)]" : address
            list.append("::\(host):")  // any host, any port → this address, same port
            connectTo = list
            check(CURLOPT_CONNECT_TO, easy.set(CURLOPT_CONNECT_TO, list: list))
        }

        guard let (option, code) = failed else { return nil }
        let kind: HTTPError.Kind = code == CURLE_URL_MALFORMAT ? .invalidRequest("malformed URL") : .other(curlCode: Int(code.rawValue))
        return submission.error(kind, "libcurl refused option \(option.rawValue): \(String(cString: curl_easy_strerror(code)))",
                                curlCode: Int(code.rawValue))
    }

    // MARK: Callbacks (inside curl_multi_perform, on the client thread)

    /// One request is sent once. When a kept-alive connection dies before any answer comes,
    /// libcurl sends the same request again on another one, up to five times, with no delay,
    /// inside one transfer: a receiver that read the request and then closed got it six times
    /// for one try, whatever the retry policy said. A second send ends the transfer instead,
    /// as a failed try, and the policy decides when the request goes again.
    func aboutToSend() -> Int32 {
        sends += 1
        guard sends > 1 else { return CURL_PREREQFUNC_OK }
        aborted = .resend
        return CURL_PREREQFUNC_ABORT
    }

    /// Returns the bytes taken; anything else makes libcurl abort with CURLE_WRITE_ERROR.
    func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        let room = bodyLimit - body.count
        if bytes.count <= room {
            body.append(contentsOf: bytes)
            return bytes.count
        }
        if room > 0 { body.append(contentsOf: bytes[0..<room]) }
        truncated = true
        let surplus = bytes.count - room
        if discardOversizedBody && discarded + surplus <= OversizedBodyPolicy.discardLimit {
            discarded += surplus
            return bytes.count
        }
        aborted = .bodyLimit
        return 0
    }

    func receiveHeader(_ bytes: UnsafeRawBufferPointer) -> Int {
        headerBytes += bytes.count
        if headerBytes > maxHeaderBytes {
            aborted = .headersTooLarge
            return 0
        }
        var line = bytes[...]
        while let last = line.last, last == 0x0A || last == 0x0D { line = line.dropLast() }
        if line.isEmpty {
            headersComplete = true  // an interim response's end too; its successor's status line resets it
            return bytes.count
        }
        if line.starts(with: "HTTP/".utf8) {
            headers.removeAll()  // a new (interim or final) response begins
            headerBytes = bytes.count
            headersComplete = false
            return bytes.count
        }
        if let first = line.first, first == 0x20 || first == 0x09 {
            // obsolete line folding: continues the previous value
            if !headers.isEmpty {
                headers[headers.count - 1].1 += " " + String(decoding: trimmed(line), as: UTF8.self)
            }
            return bytes.count
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return bytes.count }
        let name = String(decoding: trimmed(line[..<colon]), as: UTF8.self)
        let value = String(decoding: trimmed(line[line.index(after: colon)...]), as: UTF8.self)
        headers.append((name, value))
        return bytes.count
    }

    // MARK: Completion

    func outcome(_ code: CURLcode) -> Result<HTTPResponse, HTTPError> {
        if aborted == .headersTooLarge {
            return .failure(submission.error(.tooLarge, "response headers exceed \(maxHeaderBytes) bytes"))
        }
        if aborted == .resend {
            return .failure(submission.error(.receiveFailed, "the kept-alive connection closed before any answer came "
                + "(the receiver may have read the request); it is not sent again within this try"))
        }
        // libcurl refuses a single header line past its own limit (100 KB) as out of memory.
        if code == CURLE_OUT_OF_MEMORY && !headersComplete {
            return .failure(submission.error(.tooLarge, "a response header line is longer than libcurl accepts"))
        }
        // An answer counts from its status line: once a final response's headers are in, a
        // body cut short (by the timeout, a connection closed or reset mid-body, an HTTP/2
        // stream reset) leaves the
        // answer standing with what arrived of its body. A 2xx whose body trickles past the
        // timeout was received and acted on: sending it again would do the work twice.
        let status = easy.infoLong(CURLINFO_RESPONSE_CODE)
        let bodyCutShort = headersComplete && status >= 200
            && [CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM].contains(code)
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && aborted == .bodyLimit) || bodyCutShort else {
            var message = easy.errorMessage
            if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
            return .failure(submission.error(HTTPError.Kind(curlCode: code), message, curlCode: Int(code.rawValue)))
        }
        let timings = HTTPTimings(
            connect: .microseconds(easy.infoOffset(CURLINFO_CONNECT_TIME_T)),
            firstByte: .microseconds(easy.infoOffset(CURLINFO_STARTTRANSFER_TIME_T)),
            total: .microseconds(easy.infoOffset(CURLINFO_TOTAL_TIME_T)))
        return .success(HTTPResponse(
            status: status,
            headers: headers,
            body: body,
            bodyTruncated: truncated || bodyCutShort,
            timings: timings,
            reusedConnection: easy.infoLong(CURLINFO_NUM_CONNECTS) == 0,
            remoteAddress: easy.infoString(CURLINFO_PRIMARY_IP)))
    }
}

private func trimmed(_ bytes: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
    var result = bytes
    while let first = result.first, first == 0x20 || first == 0x09 { result = result.dropFirst() }
    while let last = result.last, last == 0x20 || last == 0x09 || last == 0x0D || last == 0x0A { result = result.dropLast() }
    return result
}

/// A first-in first-out queue with O(1) amortised append and pop.
struct FIFO<Element> {
    private var items: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }

    mutating func append(_ element: Element) { items.append(element) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }
}
