pub mod backend_select;
pub mod cli;
pub mod device;
pub mod glue;
pub mod train;
