import ArgumentParser
import ChaperoneControl

@main
enum ChaperonectlCommand {
    static func main() async {
        await Chaperonectl.main()
    }
}
