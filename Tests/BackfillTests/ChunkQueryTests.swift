import Backfill
import Decoding
import Testing

@Suite struct ChunkQueryTests {
    let table = BackfillTable(
        name: TableName(schema: "public", name: "Odd \"Name\""),
        columns: [.init(name: "tenant", typeOID: 23, typeName: "integer", isIdentity: true),
                  .init(name: "id", typeOID: 2950, typeName: "uuid", isIdentity: true),
                  .init(name: "body", typeOID: 25, typeName: "text", isIdentity: false)],
        keyColumns: ["tenant", "id"], rowFilter: "(tenant > 0)")

    @Test func theFirstChunkReadsFromTheStartInKeyOrder() {
        let query = ChunkQuery(table: table, where: nil, after: nil, through: nil, limit: 500)
        #expect(query.sql == #"""
            SELECT "tenant", "id", "body" FROM "public"."Odd ""Name""" WHERE ((tenant > 0)) \#
            ORDER BY "tenant", "id" LIMIT 500
            """#)
        #expect(query.parameters.isEmpty)
    }

    @Test func laterChunksReadPastTheCursorAsARowComparisonOfTheKeysTypes() {
        let query = ChunkQuery(table: table, where: "body <> ''", after: ["3", "0b0e…"], through: nil, limit: 10)
        #expect(query.sql == #"""
            SELECT "tenant", "id", "body" FROM "public"."Odd ""Name""" WHERE ("tenant", "id") > ($1::integer, $2::uuid) \#
            AND (body <> '') AND ((tenant > 0)) ORDER BY "tenant", "id" LIMIT 10
            """#)
        #expect(query.parameters == ["3", "0b0e…"])
    }

    /// A backfill reads up to the highest key it found when it started: rows inserted since
    /// are the stream's. No row found then, nothing is read.
    @Test func chunksStopAtTheHighestKeyFoundAtTheStart() {
        let query = ChunkQuery(table: table, where: nil, after: ["3", "0b0e…"], through: ["9", "ffff…"], limit: 10)
        #expect(query.sql == #"""
            SELECT "tenant", "id", "body" FROM "public"."Odd ""Name""" WHERE ("tenant", "id") > ($1::integer, $2::uuid) \#
            AND ("tenant", "id") <= ($3::integer, $4::uuid) AND ((tenant > 0)) ORDER BY "tenant", "id" LIMIT 10
            """#)
        #expect(query.parameters == ["3", "0b0e…", "9", "ffff…"])
        let first = ChunkQuery(table: table, where: nil, after: nil, through: ["9", "ffff…"], limit: 10)
        #expect(first.sql.contains(#"WHERE ("tenant", "id") <= ($1::integer, $2::uuid) AND"#), "\(first.sql)")
        let none = ChunkQuery(table: table, where: "body <> ''", after: nil, through: [], limit: 10)
        #expect(none.sql.contains("WHERE false AND (body <> '')"), "\(none.sql)")
        #expect(none.parameters.isEmpty)
        #expect(ChunkQuery.highestKey(table: table, where: "body <> ''") == #"""
            SELECT "tenant", "id" FROM "public"."Odd ""Name""" WHERE (body <> '') AND ((tenant > 0)) \#
            ORDER BY "tenant" DESC, "id" DESC LIMIT 1
            """#)
    }

    @Test func theCursorIsTheLastRowsKey() {
        #expect(ChunkQuery.cursor(after: [["1", "a", nil], ["2", "b", "x"]], table: table) == ["2", "b"])
        #expect(ChunkQuery.cursor(after: [], table: table) == nil)
    }
}

@Suite struct WhereClauseTests {
    @Test(arguments: [
        "id > 5", "status = 'a;b)'", "name = \"we(ird\"", "x = $$)$$ AND y = $tag$;$tag$", "a IN (1, (2))",
        "id /* ) ; */ > 5", "x = '$1' AND y = $q$ $2 $q$ AND a$1 = 1", "x = $é$)$é$ AND y = $_1$;$_1$",
        // Nested comments, escape strings and `$` inside identifiers, read as the server reads them.
        "id /* a /* ) */ ( */ > 5", "name = E'it\\'s (' AND x = e'\\\\'", "a$b$ = 1 AND (c$ > 2)",
    ])
    func oneExpressionPasses(_ text: String) throws {
        try WhereClause.check(text)
    }

    @Test(arguments: [
        ("", WhereClause.Problem.empty), ("  \n", .empty),
        ("true) OR (true", .unbalancedParentheses), ("true) UNION SELECT 1 --", .unbalancedParentheses),
        ("(id > 5", .unbalancedParentheses), ("id > 5; DROP TABLE t", .semicolon),
        ("name = 'open", .unterminated("string")), ("x = $q$ never", .unterminated("dollar-quoted string")),
        ("id /* never", .unterminated("comment")), ("\"open", .unterminated("quoted identifier")),
        // What a scanner that ends a comment at its first `*/`, reads `\'` in an escape string as
        // its end, or takes `$a$` in an identifier for a dollar quote would let close the chunk
        // query's parentheses.
        ("true /* /* */ ( */ ) OR (true /* /* */ ) */", .unbalancedParentheses),
        ("E'\\'' <> '' ) OR (E'\\'' <> ''", .unbalancedParentheses),
        ("x$a$ ) OR ( x$a$", .unbalancedParentheses),
        ("id /* /* */ > 5", .unterminated("comment")), ("x = E'open\\'", .unterminated("string")),
        // A line comment hides what the chunk query puts after the expression; the server also
        // ends one at a carriage return, and takes bytes from 0x80 into a dollar quote's tag.
        ("id > 5 -- only recent rows", .lineComment), ("false --\r) OR (true", .lineComment),
        ("id > 5 -- trailing ) ;\n", .lineComment),
        ("$é$'$é$ IS NULL ) OR ( id = 1 /*'*/", .unbalancedParentheses),
        // Nothing binds a parameter: the server said only that the bind message lacked one.
        ("id > $1", .parameter), ("id = ($12)", .parameter),
    ])
    func anythingElseIsRefusedWithItsReason(_ text: String, _ problem: WhereClause.Problem) {
        #expect(throws: problem) { try WhereClause.check(text) }
    }
}
