@testable import ChaperoneInjector
import Testing

@Suite struct JSONPointerTests {
    @Test func escapesTildeBeforeSlash() {
        #expect(JSONPointer.escape("a/~b") == "a~1~0b")
        #expect(JSONPointer.escape("~1") == "~01")
        #expect(JSONPointer.path(["metadata", "annotations", "example.com/owner~team"]) == "/metadata/annotations/example.com~1owner~0team")
    }
}
