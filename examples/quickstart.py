"""Write demo bars into ./db and read them back (replaced by the CLI once it lands)."""

import numpy as np
import pandas as pd

from tickvault import ParquetDB

db = ParquetDB("db")
dates = pd.bdate_range(end=pd.Timestamp.now(tz="UTC").normalize(), periods=250, tz="UTC")
frames = []
for i, t in enumerate(["AAPL", "MSFT", "GOOG", "AMZN"]):
    rng = np.random.default_rng(i)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
    frames.append(
        pd.DataFrame(
            {
                "ticker": t,
                "timestamp": dates,
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "volume": 1e6,
            }
        )
    )
result = db.upsert_prices(pd.concat(frames))
print(f"committed version {result.version}: {result.rows} rows")
print(db.read_table("prices", tickers=["AAPL"]).tail())
print("watermarks:", {k: str(v.date()) for k, v in db.watermarks().items()})
print("verify ok:", db.verify().ok)
