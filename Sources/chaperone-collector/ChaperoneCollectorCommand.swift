import ChaperoneCollector
@main struct ChaperoneCollectorCommand { static func main() {} }
