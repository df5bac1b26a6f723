
pub mod train;
pub mod backend_select;
pub mod cli;
