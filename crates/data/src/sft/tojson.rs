//! The `tojson` filter as transformers defines it for chat templates: Python's
//! `json.dumps(x, ensure_ascii=False, indent=indent)` (", " and ": " separators, no HTML
//! escaping), which tool-calling templates rely on.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// `{{ x | tojson }}` / `{{ x | tojson(indent=2) }}`.
pub(crate) fn tojson(value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_value(&mut out, &value, indent, sort_keys.unwrap_or(false), 0)?;
    Ok(out)
}

fn write_value(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    level: usize,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String => out.push_str(&quote(value.as_str().unwrap_or_default())),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_items(out, items.len(), '[', ']', indent, level, |out, i| {
                write_value(out, &items[i], indent, sort_keys, level + 1)
            })?;
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            write_items(out, keys.len(), '{', '}', indent, level, |out, i| {
                let key = &keys[i];
                out.push_str(&quote(
                    &key.as_str().map_or_else(|| key.to_string(), str::to_string),
                ));
                out.push_str(": ");
                write_value(out, &value.get_item(key)?, indent, sort_keys, level + 1)
            })?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot serialise a value of kind {other}"),
            ))
        }
    }
    Ok(())
}

/// `[a, b]`, or with an indent one item per line, as `json.dumps` lays them out.
fn write_items(
    out: &mut String,
    n: usize,
    open: char,
    close: char,
    indent: Option<usize>,
    level: usize,
    mut item: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if n == 0 {
        out.push(close);
        return Ok(());
    }
    for i in 0..n {
        match indent {
            Some(width) => {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&" ".repeat(width * (level + 1)));
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        item(out, i)?;
    }
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * level));
    }
    out.push(close);
    Ok(())
}

/// A JSON string literal (non-ASCII kept, as with `ensure_ascii=False`).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use minijinja::Environment;

    #[test]
    fn matches_python_json_dumps() {
        let mut env = Environment::new();
        env.add_filter("tojson", super::tojson);
        let ctx = minijinja::context! {
            x => minijinja::context! { name => "f<é>", args => vec![1, 2], none => () },
        };
        // Python: json.dumps({"args": [1, 2], "name": "f<é>", "none": None}, ensure_ascii=False)
        let flat = env
            .render_str("{{ x | tojson(sort_keys=true) }}", ctx.clone())
            .unwrap();
        assert_eq!(flat, r#"{"args": [1, 2], "name": "f<é>", "none": null}"#);
        let pretty = env
            .render_str("{{ x | tojson(indent=2, sort_keys=true) }}", ctx)
            .unwrap();
        assert_eq!(
            pretty,
            "{\n  \"args\": [\n    1,\n    2\n  ],\n  \"name\": \"f<é>\",\n  \"none\": null\n}"
        );
        assert_eq!(
            env.render_str("{{ [] | tojson }}{{ true | tojson }}", ())
                .unwrap(),
            "[]true"
        );
    }
}
