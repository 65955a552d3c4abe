import Core
import Foundation
import Replication
import Scheduling
import StateStore

/// The JSON bodies of the admin API, as the OpenAPI document describes them.
enum AdminReports {
    struct Status: Encodable, Sendable {
        var role: String
        var slot: String
        var checkpointLSN: String
        /// nil when the source database cannot be reached.
        var serverWALEnd: String?
        var lagBytes: UInt64?
        var deliveries: [DeliveryCount]
        var backfillsRunning: Int
    }

    struct DeliveryCount: Encodable, Sendable, Hashable {
        var handler: String
        var status: String
        var count: Int
    }

    struct Delivery: Encodable, Sendable {
        var id: Int64
        var status: String
        var attempt: Int
        var handler: String
        var idempotencyKey: String
        var url: String
        var lastHTTPStatus: Int?
        var lastError: String?
        var nextAttemptAt: String

        init(_ entry: DeliveryListing.Entry) {
            id = Int64(entry.id) ?? 0
            status = entry.status
            attempt = Int(entry.attempt) ?? 0
            handler = entry.handler
            idempotencyKey = entry.idempotencyKey
            url = entry.url
            lastHTTPStatus = Int(entry.lastHTTPStatus)
            lastError = entry.lastError.isEmpty ? nil : entry.lastError
            nextAttemptAt = entry.nextAttemptAt
        }
    }

    struct Backfill: Encodable, Sendable {
        var id: Int64
        var table: String
        /// The slot whose service works on it; null for a request any service takes (before 037).
        var slot: String?
        var status: String
        var chunksDone: Int
        var rowsDone: Int64
        var rowsEstimated: Int64?
        var rowsPerSecond: Double?
        var etaSeconds: Double?
        var error: String?
        var requestedAt: String
        var startedAt: String?
        var finishedAt: String?

        init(_ entry: BackfillRequests.Entry) {
            id = entry.id
            table = entry.qualifiedTable
            slot = entry.slot
            status = entry.status.rawValue
            chunksDone = entry.chunksDone
            rowsDone = entry.rowsDone
            rowsEstimated = entry.rowsEstimated
            rowsPerSecond = entry.rowsPerSecond
            etaSeconds = entry.etaSeconds
            error = entry.error
            requestedAt = entry.requestedAt
            startedAt = entry.startedAt
            finishedAt = entry.finishedAt
        }
    }

    struct Schedule: Encodable, Sendable {
        var name: String
        var cron: String
        var lastStartedAt: String?
        var lastFinishedAt: String?
        var lastRows: Int64?
        var lastError: String?
        var nextRunAt: String
    }

    struct Retried: Encodable, Sendable {
        var id: Int64
        var status: String
    }

    struct Problem: Encodable, Sendable {
        var error: String
        var parameter: String?
    }

    struct Readiness: Encodable, Sendable {
        var role: String?
        var reason: String?
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // Every value here encodes; an empty object stands in for what cannot happen.
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    static func utc(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}

/// A scheduled job as the admin API lists it: the configuration's side (name, cron); the
/// runs come from `changerelay.schedule_runs`.
public struct AdminSchedule: Sendable {
    public var name: String
    public var cron: CronSchedule

    public init(name: String, cron: CronSchedule) {
        self.name = name
        self.cron = cron
    }
}
