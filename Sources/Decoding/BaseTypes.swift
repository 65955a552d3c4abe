/// The type a column's values are rendered as: a domain's base type (through domains over
/// domains), any other type itself. Both plugins name a domain column by the domain's own
/// type, while its values are its base type's (text output, and binary too), so a domain over
/// int4 printed `"5"` where its base type prints `5`, and `--binary` refused it. Built-in
/// types are never domains: the resolver is asked only for types from `firstUserTypeOID` on.
public struct BaseTypes: Sendable {
    /// PostgreSQL's FirstNormalObjectId: every type below it comes with the server.
    public static let firstUserTypeOID: UInt32 = 16_384

    private let resolve: @Sendable (UInt32) -> UInt32

    /// `resolve`: a user type's base type, or the type itself when it is not a domain.
    public init(resolve: @escaping @Sendable (UInt32) -> UInt32) {
        self.resolve = resolve
    }

    /// No look-ups: every type renders as itself.
    public static let unresolved = BaseTypes { $0 }

    public func base(of oid: UInt32) -> UInt32 {
        oid < Self.firstUserTypeOID ? oid : resolve(oid)
    }

    /// `column` with its type replaced by its base type.
    func resolved(_ column: Column) -> Column {
        var resolved = column
        resolved.typeOID = base(of: column.typeOID)
        return resolved
    }
}
