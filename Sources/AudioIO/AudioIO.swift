import CSndFile
import CSampleRate
