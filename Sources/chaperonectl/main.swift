import ArgumentParser
import ChaperoneControl

await Chaperonectl.main()
