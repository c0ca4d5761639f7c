import CChaperoneZlib
import Hummingbird
import JWTKit
import PostgresNIO
import SQLiteNIO
