import ArgumentParser
import RelayConfiguration
import Delivery
import Foundation
import Handlers
import Replication
import Schema
import StateStore

struct Webhooks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook configs.", subcommands: [Test.self])

    /// Sends one signed `webhook.test` event to a config now and logs it in `webhook_logs`.
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one signed webhook.test event to the active config NAME; exit 0 on 2xx, 1 otherwise, "
                + "2 when there is no such active config, more than one, or it cannot fire (a malformed events, headers, retry_config or url).")

        @OptionGroup var options: ConfigOptions

        @Argument(help: "The config's name (webhook_configs.name).")
        var name: String

        func run() async throws {
            let config = try options.load()
            bootstrapLogging(config)
            let outcome: WebhookTestEvent.Outcome
            let db: PostgresConnection
            let target: WebhookTestEvent.Target
            do {
                db = try PostgresConnection(url: config.requireSourceURL())
                try RequiredMigration.webhooks.require(neededBy: "webhooks test", on: db)
                let found = try db.query("""
                    SELECT id::text AS id, url, secret, events::text AS events, headers::text AS headers,
                           retry_config::text AS retry_config, CASE WHEN is_active THEN 't' ELSE 'f' END AS is_active
                    FROM public.webhook_configs WHERE name = $1
                    ORDER BY is_active IS TRUE DESC, id
                    """, [name])
                guard let id = found.value("id") else {
                    FileOutput.standardError.write(line: "changerelay: no webhook config is named '\(name)'")
                    throw ExitCode(2)
                }
                // The seed makes names unique; a table without that constraint may repeat one,
                // and a test sent to one of two active configs would say nothing of the other.
                let active = found.rows.indices.filter { found.value("is_active", row: $0) == "t" }
                guard active.count < 2 else {
                    let ids = active.compactMap { found.value("id", row: $0) }.joined(separator: ", ")
                    FileOutput.standardError.write(line: "changerelay: \(active.count) active webhook configs are named '\(name)' (ids \(ids)); give each its own name")
                    throw ExitCode(2)
                }
                guard found.value("is_active") == "t" else {
                    FileOutput.standardError.write(line: "changerelay: webhook config '\(name)' (id \(id)) is inactive")
                    throw ExitCode(2)
                }
                // What the service would send with, or why it never fires: a test that passed
                // for a config the service refuses would be a false all-clear.
                let fields = ["id", "url", "events", "headers", "retry_config", "is_active"].reduce(into: [String: String]()) {
                    $0[$1] = found.value($1)
                }
                let parsed: WebhookConfig
                switch WebhookConfig.parse(fields) {
                case .success(let usable): parsed = usable
                case .failure(let unusable):
                    FileOutput.standardError.write(line: "changerelay: webhook config '\(name)' (id \(id)) cannot fire: \(unusable.reason)")
                    throw ExitCode(2)
                }
                target = WebhookTestEvent.Target(id: id, url: parsed.url, secret: found.value("secret"),
                                                 headers: parsed.headers.map { ($0.name, $0.value) })
            } catch let error as ExitCode {
                throw error
            } catch let error as CustomStringConvertible & Error {
                throw failure(error.description)
            }
            let body = WebhookTestEvent.body(configID: target.id, at: Date())
            let client: HTTPClient
            do { client = try HTTPClient() } catch { throw failure(error.description) }
            defer { client.close() }
            outcome = await WebhookTestEvent.send(target, body: body, allowPrivateTargets: config.webhooks.allowPrivateTargets,
                                                  timeout: config.delivery.timeout, client: client)
            let (status, responseBody, error): (Int?, String?, String?) = switch outcome {
            case .response(let status, let body): (status, body, (200...299).contains(status) ? nil : "HTTP \(status)")
            case .failed(let reason): (nil, nil, reason)
            }
            do {
                try db.query("""
                    INSERT INTO public.webhook_logs (webhook_config_id, event_type, payload, response_status, response_body,
                                                     error_message, attempt_count, completed_at)
                    SELECT r.webhook_config_id, 'webhook.test', $2::jsonb, $3::int, $4, $5, 1, now()
                    FROM jsonb_populate_record(NULL::public.webhook_logs, jsonb_build_object('webhook_config_id', $1::text)) r
                    """, [target.id, String(decoding: body, as: UTF8.self), status.map(String.init), responseBody, error])
            } catch {
                FileOutput.standardError.write(line: "changerelay: the test event could not be logged in webhook_logs: \(error)")
            }
            switch outcome {
            case .response(let status, let body):
                print("HTTP \(status)")
                if !body.isEmpty { print(body) }
                guard (200...299).contains(status) else { throw ExitCode.failure }
            case .failed(let reason):
                FileOutput.standardError.write(line: "changerelay: the test event was not delivered: \(reason)")
                throw ExitCode.failure
            }
        }
    }
}
