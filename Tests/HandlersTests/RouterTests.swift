import Core
import Decoding
import Handlers
import PlannedEffects
import Testing

private func text(_ value: String) -> TupleValue { .text(ArraySlice(value.utf8)) }

private func change(_ table: String, id: String, operation: Change.Operation = .insert) -> Change {
    let columns = [Column(name: "id", typeOID: 23, isKey: true), Column(name: "v", typeOID: 25)]
    return Change(lsn: LSN(0x100), schema: "public", table: table, operation: operation,
                  new: Row(columns: columns, values: [text(id), text("x\ty")]))
}

private func transaction(_ changes: [Change]) -> Transaction {
    Transaction(xid: 7, commitLSN: LSN(0x1_0000_0200), endLSN: LSN(0x1_0000_0230),
                commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: changes)
}

extension Router {
    /// Every delivery of a small transaction at once.
    func plan(_ transaction: Transaction) throws -> [PositionedDelivery] {
        var planned: [PositionedDelivery] = []
        try plan(transaction) { effect in
            if case .delivery(let delivery) = effect { planned.append(delivery) }
        }
        return planned
    }
}

@Suite struct RouterTests {
    let echo = EchoHandler(url: "http://127.0.0.1:9/echo", tables: ["items", "other.things"])

    @Test func routesOnlyTheHandlersTables() throws {
        let planned = try Router([echo]).plan(transaction([
            change("items", id: "1"), change("unrelated", id: "2"), change("items", id: "3"),
        ]))
        #expect(planned.map(\.position.index) == [0, 2])
        #expect(planned.allSatisfy { $0.handler == "echo" && $0.delivery.url == "http://127.0.0.1:9/echo" })
    }

    @Test func idempotencyKeysComeFromTheSourcePosition() throws {
        let tx = transaction([change("items", id: "1"), change("items", id: "2")])
        let first = try Router([echo]).plan(tx), again = try Router([echo]).plan(tx)
        #expect(first.map(\.idempotencyKey) == ["echo:1/200:0:echo", "echo:1/200:1:echo"])
        #expect(first.map(\.idempotencyKey) == again.map(\.idempotencyKey))
    }

    @Test func echoSendsTheTailLineAndOrdersByEntity() throws {
        let tx = transaction([change("items", id: "42")])
        let delivery = try #require(try Router([echo]).plan(tx).first).delivery
        #expect(delivery.body == #"{"lsn":"0/100","xid":7,"commit_time":"2000-01-01 00:00:00+00","schema":"public","table":"items","op":"insert","new":{"id":42,"v":"x\ty"},"old":null}"#)
        #expect(delivery.orderingKey == "public.items:id=42")
        #expect(delivery.headers == [.init("Content-Type", "application/json")])
        #expect(delivery.auth == nil)
    }

    @Test func anEmptyRouterPlansNothing() throws {
        #expect(Router([]).isEmpty)
        #expect(try Router([]).plan(transaction([change("items", id: "1")])).isEmpty)
    }
}
