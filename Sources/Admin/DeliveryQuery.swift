import StateStore

/// `GET /api/deliveries`' query: which deliveries to list. A value that cannot be read is
/// refused with the parameter's name rather than ignored, so a typo does not list everything.
public struct DeliveryQuery: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maxLimit = 1000

    public var status: DeliveryListing.Filter?
    public var handler: String?
    public var limit: Int

    public init(status: DeliveryListing.Filter? = nil, handler: String? = nil, limit: Int = Self.defaultLimit) {
        self.status = status
        self.handler = handler
        self.limit = limit
    }

    public init(parameters: [(String, String)]) throws(BadParameter) {
        self.init()
        for (name, value) in parameters {
            switch name {
            case "status":
                guard let status = DeliveryListing.Filter(value) else {
                    throw BadParameter(name, "must be one of " + (DeliveryStatus.allCases.map(\.rawValue) + ["paused"]).joined(separator: ", "))
                }
                self.status = status
            case "handler":
                guard !value.isEmpty, value.utf8.count <= 64,
                      value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
                    throw BadParameter(name, "must be a handler name (letters, digits, _ - .)")
                }
                handler = value
            case "limit":
                guard let limit = Int(value), (1...Self.maxLimit).contains(limit) else {
                    throw BadParameter(name, "must be an integer from 1 to \(Self.maxLimit)")
                }
                self.limit = limit
            default:
                throw BadParameter(name, "unknown parameter; known: status, handler, limit")
            }
        }
    }
}

/// A request parameter that cannot be read: answered 400 with the parameter's name.
public struct BadParameter: Error, Hashable, CustomStringConvertible {
    public var parameter: String
    public var reason: String

    public init(_ parameter: String, _ reason: String) {
        self.parameter = parameter
        self.reason = reason
    }

    public var description: String { "\(parameter): \(reason)" }
}
