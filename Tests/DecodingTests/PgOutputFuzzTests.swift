import Core
import Decoding
import TestSupport
import Testing

private typealias W = PgOutputWire

/// A valid message and the decoder state it is valid in.
private struct Sample {
    var bytes: [UInt8]
    var proto: Int
    var inStream: Bool
}

private func decoder(proto: Int, inStream: Bool) -> PgOutputDecoder {
    var decoder = PgOutputDecoder(protoVersion: proto)
    if inStream { _ = try? decoder.decode(W.streamStart(xid: 77, first: true)) }
    return decoder
}

private let configurations = [(1, false), (2, false), (2, true), (3, false), (3, true)]

private let samples: [Sample] = {
    let columns: [W.ColumnSpec] = [.init(name: "id", type: 20, key: true), .init(name: "body"), .init(name: "at", type: 1184)]
    let row: [PgOutputCell] = [.text("1"), .text("héllo"), .null]
    var samples: [Sample] = []
    for xid: UInt32? in [nil, 78] {
        let proto = xid == nil ? 1 : 2
        samples += [
            W.relation(oid: 1, name: "t", identity: "f", columns: columns, xid: xid),
            W.type(oid: 2, namespace: "public", name: "mood", xid: xid),
            W.insert(oid: 1, row + [.binary([1, 2]), .toast], xid: xid),
            W.update(oid: 1, [.text("2"), .toast, .null], xid: xid),
            W.update(oid: 1, old: ("K", [.text("1"), .null, .null]), row, xid: xid),
            W.update(oid: 1, old: ("O", row), row, xid: xid),
            W.delete(oid: 1, old: ("K", [.text("1"), .null, .null]), xid: xid),
            W.delete(oid: 1, old: ("O", row), xid: xid),
            W.truncate(oids: [1, 2], options: 3, xid: xid),
            W.message(transactional: true, lsn: 9, prefix: "relay", content: [0, 1, 2], xid: xid),
        ].map { Sample(bytes: $0, proto: proto, inStream: xid != nil) }
    }
    samples += [
        W.begin(finalLSN: 10, time: 20, xid: 30),
        W.commit(commitLSN: 10, endLSN: 11, time: 20),
        W.origin(lsn: 5, name: "pg_1"),
    ].map { Sample(bytes: $0, proto: 1, inStream: false) }
    samples += [
        W.streamStart(xid: 80, first: true),
        W.streamCommit(xid: 80, commitLSN: 1, endLSN: 2, time: 3),
        W.streamAbort(xid: 80, subxid: 81),
    ].map { Sample(bytes: $0, proto: 2, inStream: false) }
    samples.append(Sample(bytes: W.streamStop(), proto: 2, inStream: true))
    samples += [
        W.beginPrepare(prepareLSN: 1, endLSN: 2, time: 3, xid: 4, gid: "g"),
        W.prepare(prepareLSN: 1, endLSN: 2, time: 3, xid: 4, gid: "g"),
        W.streamPrepare(prepareLSN: 1, endLSN: 2, time: 3, xid: 4, gid: "g"),
        W.commitPrepared(commitLSN: 1, endLSN: 2, time: 3, xid: 4, gid: "g"),
        W.rollbackPrepared(prepareEndLSN: 1, rollbackEndLSN: 2, prepareTime: 3, rollbackTime: 4, xid: 4, gid: "g"),
    ].map { Sample(bytes: $0, proto: 3, inStream: false) }
    return samples
}()

/// Decoding must return or throw; a trap would end the test process. Thrown errors
/// must point inside the message.
private func attempt(_ bytes: [UInt8], proto: Int, inStream: Bool) -> PgOutputDecodingError? {
    var decoder = decoder(proto: proto, inStream: inStream)
    do {
        _ = try decoder.decode(bytes)
        return nil
    } catch {
        #expect(error.offset >= 0 && error.offset <= bytes.count, "\(error) for \(bytes)")
        return error
    }
}

@Suite("pgoutput decoder: fuzz")
struct PgOutputFuzzTests {
    @Test func everySampleDecodesInItsOwnState() {
        for sample in samples {
            #expect(attempt(sample.bytes, proto: sample.proto, inStream: sample.inStream) == nil, "\(sample.bytes)")
        }
    }

    @Test func everyStrictPrefixThrows() {
        for sample in samples {
            for length in 0..<sample.bytes.count {
                let prefix = Array(sample.bytes.prefix(length))
                #expect(attempt(prefix, proto: sample.proto, inStream: sample.inStream) != nil, "prefix \(prefix)")
                for (proto, inStream) in configurations {
                    _ = attempt(prefix, proto: proto, inStream: inStream)
                }
            }
        }
    }

    @Test func mutatedSamplesNeverTrap() {
        var random = SplitMix64(seed: 0x5EED)
        for sample in samples {
            for _ in 0..<300 {
                var bytes = sample.bytes
                switch Int.random(in: 0..<4, using: &random) {
                case 0: // flip one byte
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    bytes[index] = UInt8.random(in: 0...255, using: &random)
                case 1: // lengths and counts are where garbage hurts most: set a byte to an extreme
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    bytes[index] = [0x00, 0x7F, 0x80, 0xFF].randomElement(using: &random)!
                case 2: // drop a byte
                    bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
                default: // insert a byte
                    bytes.insert(UInt8.random(in: 0...255, using: &random),
                                 at: Int.random(in: 0...bytes.count, using: &random))
                }
                for (proto, inStream) in configurations {
                    _ = attempt(bytes, proto: proto, inStream: inStream)
                }
            }
        }
    }

    @Test func randomBytesNeverTrap() {
        var random = SplitMix64(seed: 42)
        let types = PgOutputMessageType.allCases.map(\.rawValue)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...64, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Mostly known types, so decoding gets past the first byte.
            if !bytes.isEmpty, Int.random(in: 0..<10, using: &random) < 8 {
                bytes[0] = types.randomElement(using: &random)!
            }
            for (proto, inStream) in configurations {
                _ = attempt(bytes, proto: proto, inStream: inStream)
            }
        }
    }
}
