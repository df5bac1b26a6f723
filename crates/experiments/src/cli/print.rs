//! Streaming generated text to stdout, shared by `bone generate` and `bone chat`.

use std::io::Write;

use models::tokenizer::TextStream;

/// Prints each generated token's text as it arrives. The generation callback cannot fail, so
/// the first write or decode error is kept and the rest of the tokens are skipped;
/// [`finish`](Self::finish) returns it.
pub struct TokenPrinter<'a> {
    text: TextStream<'a>,
    error: Option<anyhow::Error>,
}

impl<'a> TokenPrinter<'a> {
    /// A printer over `text`, the tokenizer's incremental decoder.
    pub fn new(text: TextStream<'a>) -> Self {
        Self { text, error: None }
    }

    /// Decodes `token` and writes its text to stdout, flushed.
    pub fn push(&mut self, token: u32) {
        if self.error.is_some() {
            return;
        }
        let result = self
            .text
            .push(token)
            .map_err(anyhow::Error::from)
            .and_then(|piece| {
                let mut out = std::io::stdout().lock();
                write!(out, "{piece}")?;
                out.flush()?;
                Ok(())
            });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// # Errors
    /// The first error [`push`](Self::push) met.
    pub fn finish(self) -> anyhow::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}
