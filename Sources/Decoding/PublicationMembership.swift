import Core

/// What a publication publishes, as pgoutput's server side reads it: relations (a
/// partitioned one stands for its partitions) with their column lists, schemas, or every
/// table; the actions; and whether a partition's change is reported under its root. Read
/// from the catalog, or from `changerelay.publication_history` (sql/028) as of a change.
public struct PublicationMembership: Sendable, Hashable {
    public var relations: Set<TableName>
    /// The column list of each relation that has one (PostgreSQL 15).
    public var columnLists: [TableName: Set<String>]
    public var schemas: Set<String>
    public var allTables: Bool
    public var viaRoot: Bool
    public var actions: PublishedActions
    /// The publication was dropped: pgoutput refuses to go on, and so does the wal2json path.
    public var isDropped = false

    public init(relations: Set<TableName> = [], columnLists: [TableName: Set<String>] = [:], schemas: Set<String> = [],
                allTables: Bool = false, viaRoot: Bool = false, actions: PublishedActions = .all) {
        self.relations = relations
        self.columnLists = columnLists
        self.schemas = schemas
        self.allTables = allTables
        self.viaRoot = viaRoot
        self.actions = actions
    }

    public func lists(_ table: TableName) -> Bool {
        allTables || relations.contains(table) || schemas.contains(table.schema)
    }

    /// The relation a change of the first of `chain` (the table, then the partitioned tables
    /// it belonged to at the change, parent first) is reported under, or nil.
    public func target(_ chain: [TableName]) -> TableName? {
        guard let table = chain.first, chain.contains(where: lists) else { return nil }
        return viaRoot ? chain.last(where: lists) : table
    }

    /// sql/028's `membership` jsonb: `{"relations": [[schema, table, [column, …] or null], …],
    /// "schemas": […], "all_tables", "via_root", "actions": {"insert", "update", "delete", "truncate"}}`,
    /// or `{"dropped": true}`.
    init(json: JSONValue, _ failure: (String) -> SchemaHistoryError) throws(SchemaHistoryError) {
        self.init()
        if json["dropped"] == .bool(true) {
            isDropped = true
            return
        }
        func flag(_ value: JSONValue?, _ name: String) throws(SchemaHistoryError) -> Bool {
            guard case .bool(let set)? = value else { throw failure("membership.\(name) is not a boolean") }
            return set
        }
        guard case .array(let listed)? = json["relations"] else { throw failure("membership.relations is not an array") }
        for item in listed {
            guard case .array(let parts) = item, parts.count == 3, case .string(let schema) = parts[0],
                  case .string(let name) = parts[1] else {
                throw failure("membership.relations holds something other than [schema, name, columns]")
            }
            let table = TableName(schema: schema, name: name)
            relations.insert(table)
            switch parts[2] {
            case .null: break
            case .array(let columns):
                var names: Set<String> = []
                for column in columns {
                    guard case .string(let column) = column else { throw failure("a column list holds a non-string") }
                    names.insert(column)
                }
                columnLists[table] = names
            default: throw failure("a column list is neither null nor an array")
            }
        }
        guard case .array(let schemaItems)? = json["schemas"] else { throw failure("membership.schemas is not an array") }
        for item in schemaItems {
            guard case .string(let schema) = item else { throw failure("membership.schemas holds a non-string") }
            schemas.insert(schema)
        }
        allTables = try flag(json["all_tables"], "all_tables")
        viaRoot = try flag(json["via_root"], "via_root")
        actions = []
        for (name, action) in [("insert", PublishedActions.insert), ("update", .update), ("delete", .delete),
                               ("truncate", .truncate)] where try flag(json["actions"]?[name], "actions.\(name)") {
            actions.insert(action)
        }
    }
}
