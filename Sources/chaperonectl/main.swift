import ArgumentParser
import ChaperoneControl

Chaperonectl.main()
