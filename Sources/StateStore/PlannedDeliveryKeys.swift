/// Which idempotency keys `changerelay.deliveries` holds already: how a replay tells a
/// delivery planned before (live, or by an earlier replay) from a new one. One statement
/// for a whole chunk of keys, through the unique index on `idempotency_key`.
public enum PlannedDeliveryKeys {
    /// Takes the keys as one text-array parameter (`postgresArrayLiteral`); returns those present.
    public static let lookup = """
        SELECT idempotency_key FROM changerelay.deliveries WHERE idempotency_key = ANY ($1::text[])
        """
}
