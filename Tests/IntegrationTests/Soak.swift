import Foundation
import Testing

extension Tag {
    /// Long soaks: millions of rows, many kills. `scripts/test.sh` runs them; `scripts/test.sh --fast` leaves them out.
    @Tag static var soak: Self
}

/// Set by `scripts/test.sh --fast`: soaks are skipped, everything else runs.
let soaksEnabled = ProcessInfo.processInfo.environment["CHANGERELAY_SKIP_SOAKS"] != "1"
