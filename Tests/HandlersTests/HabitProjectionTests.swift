import Core
import Handlers
import PlannedEffects
import Testing

private func project(_ habits: String?, start: String = "2026-11-23") throws(HabitProjectionError) -> HabitProjection {
    try HabitProjection(id: "7", userID: "00000000-0000-0000-0000-000000000001", childName: "Ada",
                        weekStartDate: start, weekPeriod: "morning", habits: habits)
}

@Suite struct HabitProjectionTests {
    @Test func theRowBecomesItsChildAndWeek() throws {
        let projection = try project("[]")
        #expect(projection.child == .init(userID: "00000000-0000-0000-0000-000000000001", name: "Ada"))
        #expect(projection.week == .init(sourceID: 7, startDate: "2026-11-23", period: "morning"))
        #expect(projection.habits.isEmpty)
        #expect(try project(nil).habits.isEmpty)
    }

    @Test func sevenStatusesBecomeRecordsOnConsecutiveDays() throws {
        let projection = try project(#"[{"name": "Read", "time_period": "evening", "times": ["done", "partial", "missed", "done", "partial", "missed", "done"]}]"#,
                                     start: "2024-02-26")
        let habit = try #require(projection.habits.first)
        #expect(habit.name == "Read" && habit.timePeriod == "evening" && habit.position == 0)
        #expect(habit.records.map(\.date) == ["2024-02-26", "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01",
                                              "2024-03-02", "2024-03-03"])
        #expect(habit.records.map(\.status) == ["done", "partial", "missed", "done", "partial", "missed", "done"])
    }

    @Test func blanksAndNullsMakeNoRecord() throws {
        let projection = try project(#"[{"name": "Brush teeth", "times": ["done", "", null, "missed", "", "", null]}]"#,
                                     start: "2026-12-28")
        #expect(projection.habits[0].records == [.init(date: "2026-12-28", status: "done"), .init(date: "2026-12-31", status: "missed")])
        #expect(projection.habits[0].timePeriod == nil)
        #expect(try project(#"[{"name": "Stretch"}]"#).habits[0].records.isEmpty)
    }

    @Test func unicodeNamesArePassedOnExactly() throws {
        let projection = try project(#"[{"name": "Zähne putzen 🪥", "time_period": "朝", "times": ["done", "", "", "", "", "", ""]}]"#)
        #expect(projection.habits[0].name == "Zähne putzen 🪥" && projection.habits[0].timePeriod == "朝")
    }

    @Test func fiftyHabitsKeepTheirPositions() throws {
        let elements = (0..<50).map { #"{"name": "habit \#($0)", "times": ["done", "", "", "", "", "", ""]}"# }
        let projection = try project("[" + elements.joined(separator: ",") + "]")
        #expect(projection.habits.count == 50)
        #expect(projection.habits.map(\.position) == Array(0..<50))
        #expect(projection.habits.map(\.name) == (0..<50).map { "habit \($0)" })
    }

    /// Position is the array index: a reorder or a rename is a different projection of the same week.
    @Test func reorderingAndRenamingChangeOnlyWhatMoved() throws {
        let before = try project(#"[{"name": "A", "times": ["done","","","","","",""]}, {"name": "B"}]"#)
        let reordered = try project(#"[{"name": "B"}, {"name": "A", "times": ["done","","","","","",""]}]"#)
        #expect(reordered.habits.map(\.name) == ["B", "A"] && reordered.habits[1].records == before.habits[0].records)
        let renamed = try project(#"[{"name": "A2", "times": ["done","","","","","",""]}, {"name": "B"}]"#)
        #expect(renamed.week == before.week && renamed.habits[0].records == before.habits[0].records)
        #expect(renamed.habits[0].name == "A2")
    }

    /// Counted in bytes, as the children index's entries are: 500 four-byte characters are
    /// 2 000 bytes, one more is past the limit.
    @Test func aChildNameLongerThanAnIndexEntryHoldsIsRefused() throws {
        func child(_ name: String) throws -> HabitProjection {
            try HabitProjection(id: "7", userID: "00000000-0000-4000-8000-000000000001", childName: name,
                                weekStartDate: "2026-11-23", weekPeriod: nil, habits: "[]")
        }
        #expect(try child(String(repeating: "🪥", count: 500)).child.name.utf8.count == 2000)
        #expect {
            try child(String(repeating: "🪥", count: 500) + "a")
        } throws: { error in
            (error as? HabitProjectionError)?.problem == "child_name is longer than 2000 bytes"
        }
    }

    @Test(arguments: [
        (#"{"name": "A"}"#, "not a JSON array"),
        (#"["A"]"#, "habits[0] is not an object"),
        (#"[{"time_period": "x"}]"#, "habits[0] has no non-blank string \"name\""),
        (#"[{"name": "  "}]"#, "no non-blank string"),
        (#"[{"name": "A"}, {"name": "B", "times": ["done"]}]"#, "habits[1].times has 1 values, not 7"),
        (#"[{"name": "A", "times": "done"}]"#, "times is not an array"),
        (#"[{"name": "A", "times": ["great", "", "", "", "", "", ""]}]"#, "habits[0].times[0] is not"),
        (#"[{"name": "A", "times": [1, "", "", "", "", "", ""]}]"#, "times[0] is not"),
        (#"[{"name": "A", "time_period": 3}]"#, "time_period is not a string"),
        ("[", "not valid JSON"),
    ])
    func invalidHabitsAreRefusedNamingTheRowAndProblem(habits: String, problem: String) {
        #expect {
            try project(habits)
        } throws: { error in
            guard let error = error as? HabitProjectionError else { return false }
            return error.row == "7" && error.problem.contains(problem) && error.description.contains("habit_tracker row 7")
        }
    }

    /// The new schema's user_id is a uuid: a habit_tracker whose column was changed to text
    /// may hold anything, which would fail the batch's cast on every read of it.
    @Test(arguments: ["not-a-uuid", "", "00000000-0000-0000-0000-00000000000", "00000000000000000000000000000000",
                      "{00000000-0000-0000-0000-000000000001}", "0000000g-0000-0000-0000-000000000001"])
    func aUserIDThatIsNotAUUIDIsRefused(userID: String) {
        #expect {
            try HabitProjection(id: "7", userID: userID, childName: "Ada", weekStartDate: "2026-11-23", weekPeriod: nil, habits: nil)
        } throws: { error in
            (error as? HabitProjectionError)?.problem == "user_id is not a uuid"
        }
    }

    @Test func aUserIDInCapitalsIsStoredAsPostgresStoresIt() throws {
        let projection = try HabitProjection(id: "7", userID: "ABCDEF00-0000-0000-0000-00000000000A", childName: "Ada",
                                             weekStartDate: "2026-11-23", weekPeriod: nil, habits: nil)
        #expect(projection.child.userID == "abcdef00-0000-0000-0000-00000000000a")
    }

    @Test func missingKeyColumnsAreRefused() {
        #expect(throws: HabitProjectionError.self) {
            try HabitProjection(id: "7", userID: nil, childName: "Ada", weekStartDate: "2026-11-23", weekPeriod: nil, habits: nil)
        }
        #expect(throws: HabitProjectionError.self) {
            try HabitProjection(id: "7", userID: "00000000-0000-0000-0000-000000000001", childName: " ", weekStartDate: "2026-11-23", weekPeriod: nil, habits: nil)
        }
        #expect(throws: HabitProjectionError.self) {
            try HabitProjection(id: "7", userID: "00000000-0000-0000-0000-000000000001", childName: "Ada", weekStartDate: "2026-02-30", weekPeriod: nil, habits: nil)
        }
    }
}
