import Foundation
import LocalReceiver
import Synchronization

/// A fast loopback receiver for the pipeline benchmarks. Prints its URL, answers 200,
/// and on SIGTERM prints how many requests arrived and, for bodies that carry a
/// `commit_time` (the echo handler's), the commit-to-arrival latency percentiles.
/// With `BENCH_RECEIVER_FAIL_FIRST=1` the first request of each `Idempotency-Key` gets a
/// 500, so every delivery is retried once (the timer benchmark's backlog of retries).
let failFirst = ProcessInfo.processInfo.environment["BENCH_RECEIVER_FAIL_FIRST"] == "1"
let seen = Mutex<Set<String>>([])
let receiver = try LocalReceiver(behavior: failFirst ? .dynamic { request in
    let key = request.header("Idempotency-Key") ?? ""
    return seen.withLock { $0.insert(key).inserted } ? .status(500) : .status(200)
} : .status(200))
FileHandle.standardOutput.write(Data((receiver.url + "\n").utf8))
let stop = DispatchSemaphore(value: 0)
signal(SIGTERM, SIG_IGN)
let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
source.setEventHandler { stop.signal() }
source.resume()
stop.wait()
receiver.stop()

let formatter = DateFormatter()
formatter.locale = Locale(identifier: "en_US_POSIX")
formatter.timeZone = TimeZone(identifier: "UTC")
formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSSSSx"
func commitTime(_ body: String) -> Double? {
    guard let start = body.range(of: "\"commit_time\":\"")?.upperBound,
          let end = body[start...].firstIndex(of: "\"") else { return nil }
    var text = String(body[start..<end])
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...].prefix { $0.isNumber }
        text = String(text[..<dot]) + "." + fraction.padding(toLength: 6, withPad: "0", startingAt: 0) + "+00"
    } else {
        text = String(text.dropLast(3)) + ".000000+00"
    }
    return formatter.date(from: text)?.timeIntervalSince1970
}
let requests = receiver.requests
let latencies = requests.compactMap { request in commitTime(request.bodyText).map { (request.wallClock - $0) * 1000 } }.sorted()
func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
let keys = Set(requests.compactMap { $0.header("Idempotency-Key") }).count
FileHandle.standardOutput.write(Data("requests \(requests.count) keys \(keys) latency_ms p50 \(String(format: "%.1f", percentile(0.5))) p99 \(String(format: "%.1f", percentile(0.99))) max \(String(format: "%.1f", latencies.last ?? .nan))\n".utf8))
