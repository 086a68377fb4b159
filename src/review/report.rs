//! Review report output (HTML, CSV, charts): being written.
