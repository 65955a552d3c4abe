#if canImport(Glibc)
import Glibc
#endif
import Core

/// One accepted connection, on its own thread: read a request, record it, answer it,
/// repeat while the connection is kept alive.
final class ReceiverConnection {
    static let maxHeaderBytes = 64 * 1024
    static let maxBodyBytes = 64 * 1024 * 1024

    private enum ReadResult {
        case request(RecordedRequest, keepAlive: Bool)
        case closed
        case bad(status: Int, reason: String)
    }

    private let core: ReceiverCore
    private let fd: Int32
    private let id: Int
    /// Bytes read and not yet consumed start at `start`.
    private var buffer: [UInt8] = []
    private var start = 0

    init(core: ReceiverCore, fd: Int32, id: Int) {
        self.core = core
        self.fd = fd
        self.id = id
    }

    func run() {
        while !core.isStopped {
            switch readRequest() {
            case .closed:
                return
            case .bad(let status, let reason):
                _ = write(ReceiverResponse(status: status, body: reason + "\n"), keepAlive: false, head: false)
                return
            case .request(let request, let keepAlive):
                let (recorded, behavior, position) = core.record(request)
                let action = behavior.concrete(index: position, request: recorded)
                guard answer(action, keepAlive: keepAlive, head: recorded.method == "HEAD") else { return }
            }
        }
    }

    // MARK: Answering

    /// Returns whether the connection stays open for another request.
    private func answer(_ behavior: Behavior, keepAlive: Bool, head: Bool) -> Bool {
        switch behavior {
        case .respond(let response):
            return write(response, keepAlive: keepAlive, head: head)
        case .sequence, .dynamic:
            return write(ReceiverResponse(status: 200), keepAlive: keepAlive, head: head)  // resolved earlier
        case .neverAnswer:
            holdUntilClosed()
            return false
        case .trickle(let bytes, let interval):
            guard sendAll(Array("HTTP/1.1 200 OK\r\nContent-Length: \(bytes)\r\n\r\n".utf8)) else { return false }
            let milliseconds = Int32(clamping: max(1, interval.wholeMilliseconds))
            for _ in 0..<bytes {
                // The pause doubles as a watch on the socket: readable means the client
                // closed it or stop() shut it down.
                var watch = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&watch, 1, milliseconds)
                if ready != 0 || core.isStopped {
                    if ready < 0 && errno == EINTR { continue }
                    return false
                }
                guard sendAll([UInt8(ascii: "x")]) else { return false }
            }
            return keepAlive
        case .largeBody(let bytes):
            let close = !keepAlive
            guard sendAll(Array("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(bytes)\r\n\(close ? "Connection: close\r\n" : "")\r\n".utf8)) else { return false }
            if head { return !close }
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 64 * 1024)
            var left = bytes
            while left > 0 {
                guard !core.isStopped, sendAll(chunk[0..<min(left, chunk.count)]) else { return false }
                left -= min(left, chunk.count)
            }
            return !close
        case .invalidHTTP:
            _ = sendAll(Array("THIS IS NOT HTTP\r\nreally not\r\n\r\n".utf8))
            return false
        case .closeWithoutAnswer:
            return false
        case .unfinishedHeaders:
            guard sendAll(Array("HTTP/1.1 200 OK\r\nX-Unfinished: yes\r\n".utf8)) else { return false }
            holdUntilClosed()
            return false
        }
    }

    private func write(_ response: ReceiverResponse, keepAlive: Bool, head: Bool) -> Bool {
        let close = !keepAlive || response.closeConnection
        var text = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        var hasLength = false
        for (name, value) in response.headers {
            if name.lowercased() == "content-length" { hasLength = true }
            text += "\(name): \(value)\r\n"
        }
        let bodyless = response.status < 200 || response.status == 204 || response.status == 304
        if !hasLength && !bodyless { text += "Content-Length: \(response.body.count)\r\n" }
        if close { text += "Connection: close\r\n" }
        text += "\r\n"
        var bytes = Array(text.utf8)
        if !head && !bodyless { bytes += response.body }
        return sendAll(bytes[...]) && !close
    }

    private func holdUntilClosed() {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { scratch in
            while true {
                let count = recv(fd, scratch.baseAddress, scratch.count, 0)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return }
            }
        }
    }

    private func sendAll(_ bytes: [UInt8]) -> Bool { sendAll(bytes[...]) }

    private func sendAll(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += sent
            }
            return true
        }
    }

    // MARK: Reading

    /// Reads more bytes into the buffer; false at end of stream or on an error.
    private func fill() -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64 * 1024) { scratch in
            while true {
                let count = recv(fd, scratch.baseAddress, scratch.count, 0)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<count]))
                return true
            }
        }
    }

    /// Makes at least `count` bytes available from `position`.
    private func need(_ count: Int, from position: Int) -> Bool {
        while buffer.count - position < count {
            guard fill() else { return false }
        }
        return true
    }

    /// The index just past the next CRLF at or after `position`, reading as needed.
    private func lineEnd(from position: Int, limit: Int) -> Int? {
        var scan = position
        while true {
            while scan + 1 < buffer.count {
                if buffer[scan] == 0x0D && buffer[scan + 1] == 0x0A { return scan + 2 }
                scan += 1
            }
            if buffer.count - position > limit { return nil }
            guard fill() else { return nil }
        }
    }

    private func readRequest() -> ReadResult {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        // The header section ends at the first empty line.
        var lines: [ArraySlice<UInt8>] = []
        var position = 0
        while true {
            guard let end = lineEnd(from: position, limit: Self.maxHeaderBytes) else {
                return buffer.count > Self.maxHeaderBytes
                    ? .bad(status: 431, reason: "request header section too large") : .closed
            }
            let line = buffer[position..<(end - 2)]
            position = end
            if line.isEmpty {
                if lines.isEmpty { continue }  // tolerate empty lines before a request
                break
            }
            lines.append(line)
            if position > Self.maxHeaderBytes { return .bad(status: 431, reason: "request header section too large") }
        }

        let requestLine = lines[0].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, !requestLine[1].isEmpty,
              requestLine[2].starts(with: "HTTP/1.".utf8)
        else { return .bad(status: 400, reason: "malformed request line") }
        let method = String(decoding: requestLine[0], as: UTF8.self)
        let target = String(decoding: requestLine[1], as: UTF8.self)
        let version = String(decoding: requestLine[2], as: UTF8.self)

        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                return .bad(status: 400, reason: "malformed header line")
            }
            headers.append((
                String(decoding: line[..<colon], as: UTF8.self),
                String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces))
        }
        func value(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }

        let connection = value("connection")?.lowercased() ?? ""
        let keepAlive = version == "HTTP/1.1" ? !connection.contains("close") : connection.contains("keep-alive")
        let chunked = value("transfer-encoding")?.lowercased().contains("chunked") ?? false
        var contentLength = 0
        if !chunked, let text = value("content-length") {
            guard let length = Int(text), length >= 0 else { return .bad(status: 400, reason: "bad Content-Length") }
            guard length <= Self.maxBodyBytes else { return .bad(status: 413, reason: "request body too large") }
            contentLength = length
        }
        if (chunked || contentLength > 0), value("expect")?.lowercased() == "100-continue" {
            guard sendAll(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return .closed }
        }

        var body: [UInt8] = []
        if chunked {
            while true {
                guard let end = lineEnd(from: position, limit: 4096) else { return .closed }
                let sizeField = buffer[position..<(end - 2)].prefix { $0 != UInt8(ascii: ";") }
                guard let size = Int(String(decoding: sizeField, as: UTF8.self).trimmingSpaces, radix: 16), size >= 0 else {
                    return .bad(status: 400, reason: "bad chunk size")
                }
                position = end
                if size == 0 {
                    // Trailer fields, up to the empty line.
                    while true {
                        guard let trailerEnd = lineEnd(from: position, limit: 4096) else { return .closed }
                        let empty = trailerEnd - position == 2
                        position = trailerEnd
                        if empty { break }
                    }
                    break
                }
                guard body.count + size <= Self.maxBodyBytes else { return .bad(status: 413, reason: "request body too large") }
                guard need(size + 2, from: position) else { return .closed }
                body.append(contentsOf: buffer[position..<(position + size)])
                position += size + 2
            }
        } else if contentLength > 0 {
            guard need(contentLength, from: position) else { return .closed }
            body = Array(buffer[position..<(position + contentLength)])
            position += contentLength
        }
        start = position

        let request = RecordedRequest(
            index: -1, connection: id, method: method, target: target, version: version,
            headers: headers, body: body, arrival: .now, wallClock: wallClockSeconds())
        return .request(request, keepAlive: keepAlive)
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}

func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 303: "See Other"
    case 304: "Not Modified"
    case 307: "Temporary Redirect"
    case 308: "Permanent Redirect"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 409: "Conflict"
    case 410: "Gone"
    case 413: "Content Too Large"
    case 422: "Unprocessable Content"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default: "Status"
    }
}
