import ChaperoneControl

await Chaperonectl.runFromCommandLine()
