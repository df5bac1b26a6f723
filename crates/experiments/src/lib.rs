
pub mod train;
