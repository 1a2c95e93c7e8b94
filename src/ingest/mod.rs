//! Reading the input directory (SPEC §2): the master-data snapshot, which fails the run on any
//! bad row, and incremental revenue, where each bad row is rejected alone.

pub mod lines;
pub mod lookup;
pub mod master;
pub mod parquet;
pub mod programs;
pub mod revenue;
pub mod rows;
pub mod segment;
pub mod warning;

pub use master::{MasterData, MasterDataError};
pub use programs::{Program, Programs};
