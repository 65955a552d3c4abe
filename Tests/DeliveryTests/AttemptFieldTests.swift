import Core
import PlannedEffects
@testable import Delivery
import Testing

/// The attempt number a dispatcher adds to a planned JSON body at send time.
@Suite struct AttemptFieldTests {
    private func set(_ body: String, attempt: Int = 2) -> String {
        var bytes = Array(body.utf8)
        Dispatcher.setField("attempt", to: attempt, in: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func isAddedAsTheLastMember() {
        #expect(set(#"{"conversation_id":7,"status":"unknown"}"#) == #"{"conversation_id":7,"status":"unknown","attempt":2}"#)
    }

    @Test func anEmptyObjectGetsNoLeadingComma() {
        #expect(set("{}", attempt: 1) == #"{"attempt":1}"#)
        #expect(set("{ }\n", attempt: 3) == "{ \"attempt\":3}\n")
    }

    @Test func aBodyThatIsNotAnObjectIsSentAsPlanned() {
        #expect(set("[1,2]") == "[1,2]")
        #expect(set("plain text") == "plain text")
        #expect(set(#"{"a":1} trailing"#) == #"{"a":1} trailing"#)
        #expect(set("") == "")
    }
}
