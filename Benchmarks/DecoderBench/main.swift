// Measures pgoutput Insert decoding on one core. Run in release mode:
//   swift run -c release DecoderBench [iterations]
import Core
import Decoding
import Replication

/// A `user_conversations` row as pgoutput (text mode) sends it: bigint, four text
/// columns, timestamptz.
func insertMessage() -> [UInt8] {
    var bytes: [UInt8] = [UInt8(ascii: "I")]
    func int32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
    int32(16_384)
    bytes.append(UInt8(ascii: "N"))
    let values = ["1234567", "user_2pQ7xKfV3mZ9aBcDeFgHiJkLmN", "agent_01jd8w2k5x7c9e4r6t8y0u2i4o",
                  "conv_01jd8w3n4p6q8s0u2w4y6a8c0e", "unknown", "2026-11-23 21:42:07.123456+00"]
    bytes += withUnsafeBytes(of: UInt16(values.count).bigEndian, Array.init)
    for value in values {
        bytes.append(UInt8(ascii: "t"))
        int32(UInt32(value.utf8.count))
        bytes += Array(value.utf8)
    }
    return bytes
}

func relationMessage() -> PgOutputMessage {
    let columns = [
        Column(name: "id", typeOID: 20, isKey: true), Column(name: "clerk_id", typeOID: 25),
        Column(name: "agent_id", typeOID: 25), Column(name: "elevenlabs_conversation_id", typeOID: 25),
        Column(name: "status", typeOID: 25), Column(name: "created_at", typeOID: 1184),
    ]
    return .relation(PgOutputRelation(oid: 16_384, namespace: "public", name: "user_conversations",
                                      replicaIdentity: .full, columns: columns), xid: nil)
}

func rate(_ count: Int, _ elapsed: Duration) -> Int {
    Int(Double(count) / elapsed.inSeconds)
}

let iterations = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 5_000_000
let message = insertMessage()
let clock = ContinuousClock()

var decoder = PgOutputDecoder(protoVersion: 1)
var checksum = 0
let decodeTime = try clock.measure {
    for _ in 0..<iterations {
        if case .insert(_, let new, _) = try decoder.decode(message) { checksum &+= new.count }
    }
}
print("pgoutput insert decode: \(rate(iterations, decodeTime)) messages/s")

// Decode plus assembly into Changes, committing every 1 000 inserts, as the live stream does.
var assembler = PgOutputAssembler()
_ = try assembler.consume(relationMessage(), at: .zero)
let batch = 1_000
let assembleTime = try clock.measure {
    var lsn: UInt64 = 1
    for start in stride(from: 0, to: iterations, by: batch) {
        _ = try assembler.consume(.begin(finalLSN: LSN(lsn), commitTime: .init(microsecondsSince2000: 0), xid: 1), at: LSN(lsn))
        for _ in start..<min(start + batch, iterations) {
            lsn += 1
            _ = try assembler.consume(try decoder.decode(message), at: LSN(lsn))
        }
        if case .transaction(let transaction, _) = try assembler.consume(
            .commit(commitLSN: LSN(lsn), endLSN: LSN(lsn + 1), commitTime: .init(microsecondsSince2000: 0)), at: LSN(lsn)) {
            checksum &+= transaction.changes.count
        }
    }
}
print("pgoutput insert decode + assemble: \(rate(iterations, assembleTime)) messages/s")
print("checksum \(checksum)")
