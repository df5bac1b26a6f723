//! Fine-tuning on your own data: loaders for every row shape, field maps, bad input, eval
//! splits, chat templates (a hand-written ChatML on stories260K, SmolLM2's own), loss masks
//! token by token, and packing.

use crate::common;

use std::collections::HashSet;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::tensor::{backend::Backend, Int, Tensor};
use burn_ndarray::NdArray;

use data::batcher::{
    CausalLmBatcher, CausalLmBatcherConfig, EncodedSequence, PackedBatch, PackedBatcher,
    PackingConfig, PackingStrategy, IGNORE_INDEX,
};
use data::metamath::METAMATHQA_SAMPLE;
use data::prompt::SftExample;
use data::sft::{
    load_sft, load_sft_file, ChatTemplate, Conversation, EvalSplit, FieldMap, LossOn, Message,
    Role, Sample, SftEncoder, SftEncoderConfig, SftFormat, SftRecord,
};
use data::{load_tokenizer, DataError, LoadOptions, RowIssue, Tokenizer};

type B = NdArray;

fn stories() -> Tokenizer {
    load_tokenizer(&common::tokenizer_path("stories260K")).expect("stories260K tokenizer")
}

fn strict() -> LoadOptions {
    LoadOptions::default()
}

fn lenient() -> LoadOptions {
    LoadOptions {
        skip_bad_rows: true,
        ..Default::default()
    }
}

fn load(name: &str, contents: &str) -> (tempfile::TempDir, data::Result<data::sft::SftDataset>) {
    let (dir, path) = common::write_temp(name, contents);
    let got = load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &strict());
    (dir, got)
}

fn err_text(name: &str, contents: &str) -> (String, String) {
    let (dir, path) = common::write_temp(name, contents);
    let err =
        load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &strict()).expect_err("bad input");
    drop(dir);
    (err.to_string(), path.display().to_string())
}

fn chat(messages: &[(Role, &str)]) -> Sample {
    Sample::Chat(Conversation::new(
        messages.iter().map(|(r, c)| Message::new(*r, *c)).collect(),
    ))
}

fn rows<Bk: Backend>(t: Tensor<Bk, 2, Int>) -> Vec<Vec<i64>> {
    let [_, s] = t.dims();
    let flat: Vec<i64> = t.into_data().iter::<i64>().collect();
    flat.chunks(s.max(1)).map(<[i64]>::to_vec).collect()
}

// ---------------------------------------------------------------------------------------
// Loaders

#[test]
fn every_shape_loads_from_jsonl_and_json_arrays() {
    use Role::{Assistant, System, User};
    let cases: Vec<(&str, SftFormat, Sample)> = vec![
        (
            r#"{"instruction": "Add.", "input": "2 and 3", "output": "5"}"#,
            SftFormat::Alpaca,
            chat(&[(User, "Add.\n\n2 and 3"), (Assistant, "5")]),
        ),
        (
            r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}"#,
            SftFormat::Chat,
            chat(&[(System, "S"), (User, "U"), (Assistant, "A")]),
        ),
        (
            r#"{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "U"}, {"from": "gpt", "value": "A"}], "id": 7}"#,
            SftFormat::ShareGpt,
            chat(&[(System, "S"), (User, "U"), (Assistant, "A")]),
        ),
        (
            r#"{"prompt": "2+2=", "completion": "4"}"#,
            SftFormat::PromptCompletion,
            Sample::Completion {
                prompt: "2+2=".into(),
                completion: "4".into(),
            },
        ),
        (
            r#"{"text": "Once upon a time."}"#,
            SftFormat::Text,
            Sample::Text("Once upon a time.".into()),
        ),
        (
            r#"{"query": "Q?", "response": "R. The answer is: 1", "type": "GSM_AnsAug", "original_question": "Q?"}"#,
            SftFormat::MetaMath,
            chat(&[(User, "Q?"), (Assistant, "R. The answer is: 1")]),
        ),
    ];
    for (row, format, want) in cases {
        // JSONL: a blank line, then the row twice (lines 2 and 3).
        let (_d, got) = load("data.jsonl", &format!("\n{row}\r\n{row}\n"));
        let got = got.unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(got.format(), format);
        assert_eq!(got.len(), 2);
        assert_eq!(got.examples()[0].sample, want, "{format}");
        assert_eq!(
            got.examples().iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(got.examples()[1].location().ends_with("data.jsonl:3"));
        // A JSON array (pretty-printed), with the explicit format.
        let (_d, path) = common::write_temp("data.json", format!("[\n  {row},\n  {row}\n]\n"));
        let got = load_sft_file(&path, format, &FieldMap::new(), &strict()).expect("array");
        assert_eq!(got.examples()[1].sample, want);
        assert_eq!(got.examples()[1].line, 3);
        assert_eq!(got.report().rows, 2);
    }
}

#[test]
fn field_maps_rename_columns_and_messages() {
    let file = "{\"question\": \"Q\", \"answer\": \"A\"}\n";
    let (msg, path) = err_text("qa.jsonl", file);
    assert_eq!(
        msg,
        format!(
            "{path}:1: no known row shape fits keys [\"answer\", \"question\"]; expected chat \
             {{messages}}, sharegpt {{conversations}}, alpaca {{instruction, output}}, metamath \
             {{query, response}}, prompt-completion {{prompt, completion}}, text {{text}} \
             (rename columns with a field map such as `instruction=question,output=answer`)"
        )
    );
    let (_d, path) = common::write_temp("qa.jsonl", file);
    let fields: FieldMap = "instruction=question,output=answer".parse().expect("map");
    let got = load_sft_file(&path, SftFormat::Auto, &fields, &strict()).expect("mapped");
    assert_eq!(got.format(), SftFormat::Alpaca);
    assert_eq!(
        got.examples()[0].sample,
        Sample::Chat(Conversation::single_turn("Q", "A"))
    );

    let (_d, path) = common::write_temp(
        "dialog.jsonl",
        r#"{"dialog": [{"speaker": "user", "text": "hi"}, {"speaker": "assistant", "text": "yo"}]}"#,
    );
    let fields: FieldMap = "messages=dialog,role=speaker,content=text"
        .parse()
        .expect("map");
    let got = load_sft_file(&path, SftFormat::Auto, &fields, &strict()).expect("mapped");
    assert_eq!(got.format(), SftFormat::Chat);
    assert_eq!(
        got.examples()[0].sample,
        Sample::Chat(Conversation::single_turn("hi", "yo"))
    );

    let err = "instruction=question;output=answer"
        .parse::<FieldMap>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid field map: entry 1 `instruction=question;output=answer`: column \
         `question;output=answer` contains `=`; separate entries with `,`"
    );
}

#[test]
fn bad_input_names_file_and_line() {
    let user = r#"{"role": "user", "content": "hi"}"#;
    let cases: Vec<(&str, String, String)> = vec![
        (
            "unknown role",
            format!("{{\"messages\": [{user}, {{\"role\": \"assistant\", \"content\": \"a\"}}]}}\n{{\"messages\": [{user}, {{\"role\": \"tool\", \"content\": \"x\"}}]}}\n"),
            ":2: key `messages[1].role`: expected one of \"system\", \"user\", \"assistant\", found \"tool\"".into(),
        ),
        (
            "sharegpt role",
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"bot\", \"value\": \"a\"}]}\n".into(),
            ":1: key `conversations[1].from`: expected one of \"system\", \"human\", \"gpt\" (or \"user\", \"assistant\"), found \"bot\"".into(),
        ),
        (
            "no assistant turn",
            format!("{{\"messages\": [{{\"role\": \"system\", \"content\": \"s\"}}, {user}]}}\n"),
            ":1: key `messages`: expected at least one assistant turn, found 2 messages [system, user]".into(),
        ),
        (
            "invalid JSONL",
            "{\"text\": \"a\"}\n{\"text\": \"b\",}\n".into(),
            ":2: invalid JSON at column 14: trailing comma at line 1 column 14".into(),
        ),
        (
            "row of another shape",
            "{\"text\": \"a\"}\n\n{\"prompt\": \"p\", \"completion\": \"c\"}\n".into(),
            ":3: row does not fit the text (detected from line 1) shape: missing key `text`; keys found [\"completion\", \"prompt\"]".into(),
        ),
        (
            "not an object",
            "[{\"text\": \"a\"},\n 3]".into(),
            ":2: key `<row>`: expected a JSON object, found number 3".into(),
        ),
        (
            "content not a string",
            "{\"messages\": [{\"role\": \"assistant\", \"content\": null}]}".into(),
            ":1: key `messages[0].content`: expected a string, found null".into(),
        ),
    ];
    for (what, contents, want) in cases {
        let (msg, path) = err_text("bad.jsonl", &contents);
        assert_eq!(msg, format!("{path}{want}"), "{what}");
    }

    let (msg, path) = err_text("bad.json", "[\n {\"text\": \"a\"},\n {\"text\": }\n]");
    assert_eq!(
        msg,
        format!("{path}:3:11: invalid JSON: expected value at line 3 column 11")
    );
    let (msg, path) = err_text("empty.jsonl", " \n\n");
    assert!(
        msg.starts_with(&format!(
            "{path}: the file is empty; expected a JSON array or JSON Lines of rows shaped as \
             one of chat {{messages}}"
        )),
        "{msg}"
    );
    let (msg, path) = err_text("empty.json", "[]");
    assert!(
        msg.starts_with(&format!("{path}: no data rows; expected")),
        "{msg}"
    );
    let missing = std::path::Path::new("/nonexistent/own.jsonl");
    let err = load_sft_file(missing, SftFormat::Auto, &FieldMap::new(), &strict()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");

    // skip_bad_rows: bad rows are counted with their line; a file of only bad rows is an error.
    let (_d, path) = common::write_temp(
        "mixed.jsonl",
        "{\"oops\": 1}\n{\"text\": \"a\"}\nnot json\n{\"text\": \"b\"}\n{\"prompt\": \"p\"}\n",
    );
    let got = load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &lenient()).expect("lenient");
    assert_eq!(got.format(), SftFormat::Text);
    assert_eq!(got.len(), 2);
    let skipped: Vec<usize> = got.report().skipped.iter().map(|s| s.line).collect();
    assert_eq!(skipped, [1, 3, 5]);
    assert!(matches!(
        got.report().skipped[0].issue,
        RowIssue::UnknownShape { ref found, .. } if found == &["oops".to_string()]
    ));
    let (_d, path) = common::write_temp("allbad.jsonl", "{\"a\": 1}\n{\"b\": 2}\n");
    let err = load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &lenient()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::NoValidRows {
                skipped: 2,
                first_line: 1,
                ..
            }
        ),
        "{err}"
    );

    // An explicit format: a row without its keys is a bad row at once.
    let (_d, path) = common::write_temp("x.jsonl", "{\"text\": \"a\"}\n");
    let err = load_sft_file(&path, SftFormat::Chat, &FieldMap::new(), &strict()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: row does not fit the chat shape: missing key `messages`; keys found [\"text\"]",
            path.display()
        )
    );
}

#[test]
fn max_rows_and_metamath_sample() {
    let path = common::data_root().file(METAMATHQA_SAMPLE).expect("sample");
    let opts = LoadOptions {
        max_rows: Some(4),
        ..Default::default()
    };
    let got = load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &opts).expect("sample");
    assert_eq!(got.format(), SftFormat::MetaMath);
    assert_eq!(got.len(), 4);
    assert_eq!(got.examples()[0].line, 2);
}

// ---------------------------------------------------------------------------------------
// Train / eval split

#[test]
fn eval_from_a_fraction_or_a_file() {
    let body: String = (0..200)
        .map(|i| format!("{{\"text\": \"row {i}\"}}\n"))
        .collect();
    let (_d, path) = common::write_temp("train.jsonl", &body);
    let fraction = EvalSplit::Fraction {
        fraction: 0.05,
        seed: 17,
    };
    let split = |eval: &EvalSplit| {
        load_sft(&path, eval, SftFormat::Auto, &FieldMap::new(), &strict()).expect("split")
    };
    let a = split(&fraction);
    let eval = a.eval.as_ref().expect("eval side");
    assert_eq!((a.train.len(), eval.len()), (190, 10));
    assert_eq!((a.train.report().rows, eval.report().rows), (190, 10));
    let lines = |d: &data::sft::SftDataset| d.examples().iter().map(|r| r.line).collect::<Vec<_>>();
    let mut all: Vec<usize> = lines(&a.train).into_iter().chain(lines(eval)).collect();
    all.sort();
    assert_eq!(
        all,
        (1..=200).collect::<Vec<_>>(),
        "each row on exactly one side"
    );
    // Deterministic: the same seed gives the same rows, from any thread.
    let again = std::thread::spawn({
        let path = path.clone();
        let fraction = fraction.clone();
        move || {
            let s = load_sft(
                &path,
                &fraction,
                SftFormat::Auto,
                &FieldMap::new(),
                &strict(),
            )
            .expect("split");
            s.eval
                .expect("eval")
                .examples()
                .iter()
                .map(|r| r.line)
                .collect::<Vec<_>>()
        }
    })
    .join()
    .expect("thread");
    assert_eq!(again, lines(eval));
    let other = split(&EvalSplit::Fraction {
        fraction: 0.05,
        seed: 18,
    });
    assert_ne!(lines(other.eval.as_ref().expect("eval")), lines(eval));

    let (_d2, eval_path) = common::write_temp("eval.jsonl", "{\"text\": \"held out\"}\n");
    let b = split(&EvalSplit::File(eval_path.clone()));
    assert_eq!(b.train.len(), 200);
    let eval = b.eval.expect("eval file");
    assert_eq!(eval.path(), eval_path.as_path());
    assert_eq!(eval.examples()[0].sample, Sample::Text("held out".into()));
    assert!(split(&EvalSplit::None).eval.is_none());
}

// ---------------------------------------------------------------------------------------
// Chat templates and loss masks

/// ChatML with a BOS, as Qwen2/SmolLM2-style models write it (hand-written for the tests).
const CHATML: &str = "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// The chat template of SmolLM2-135M-Instruct, extracted once from the GGUF metadata key
/// `tokenizer.chat_template` of
/// ../shared/models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf with
/// `gguf.GGUFReader(path).fields["tokenizer.chat_template"].contents()` (Python `gguf`).
const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn two_turns() -> Conversation {
    Conversation::new(vec![
        Message::new(Role::System, "Be kind."),
        Message::new(Role::User, "Hi"),
        Message::new(Role::Assistant, "Hello!"),
        Message::new(Role::User, "Bye"),
        Message::new(Role::Assistant, "See you."),
    ])
}

/// Token ids of the ChatML rendering of [`two_turns`] with the stories260K tokenizer,
/// computed with the Python `tokenizers` 0.23.3 (`encode(text, add_special_tokens=False)`).
const TWO_TURN_IDS: [u32; 138] = [
    1, 410, 504, 506, 288, 98, 356, 295, 413, 506, 505, 419, 422, 356, 411, 423, 13, 445, 411, 409,
    417, 264, 426, 504, 506, 288, 98, 367, 506, 505, 13, 504, 506, 288, 98, 356, 295, 413, 506,
    505, 425, 419, 285, 13, 440, 417, 504, 506, 288, 98, 367, 506, 505, 13, 504, 506, 288, 98, 356,
    295, 413, 506, 505, 412, 419, 419, 293, 413, 303, 413, 13, 440, 411, 306, 414, 443, 504, 506,
    288, 98, 367, 506, 505, 13, 504, 506, 288, 98, 356, 295, 413, 506, 505, 425, 419, 285, 13, 445,
    422, 411, 504, 506, 288, 98, 367, 506, 505, 13, 504, 506, 288, 98, 356, 295, 413, 506, 505,
    412, 419, 419, 293, 413, 303, 413, 13, 437, 411, 411, 364, 426, 504, 506, 288, 98, 367, 506,
    505, 13,
];

#[test]
fn chatml_two_assistant_turns_token_by_token() {
    let template = ChatTemplate::new(CHATML, "<s>", "</s>", "test ChatML").expect("compiles");
    let rendered = template.render_with_targets(&two_turns()).expect("render");
    assert_eq!(
        rendered.text,
        "<s><|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n\
         <|im_start|>assistant\nSee you.<|im_end|>\n"
    );
    let spans: Vec<&str> = rendered
        .targets
        .iter()
        .map(|r| &rendered.text[r.clone()])
        .collect();
    assert_eq!(spans, ["Hello!<|im_end|>", "See you.<|im_end|>"]);
    assert_eq!(rendered.targets, [93..109, 163..181]);

    let encoder = SftEncoder::new(
        stories(),
        Some(template.clone()),
        SftEncoderConfig::default(),
    )
    .expect("encoder");
    let enc = encoder
        .encode_sample(&Sample::Chat(two_turns()))
        .expect("encode");
    assert_eq!(enc.input_ids, TWO_TURN_IDS);
    assert!(!enc.truncated);
    // Targets: tokens 71..83 ("H e ll o ! < | im _ end | >") and 125..137 ("S e e ▁you . <
    // | im _ end | >"); the "\n" after each <|im_end|> and everything else is ignored.
    let target: Vec<usize> = (0..enc.labels.len())
        .filter(|&i| enc.labels[i] != IGNORE_INDEX)
        .collect();
    assert_eq!(target, (71..83).chain(125..137).collect::<Vec<_>>());
    for &i in &target {
        assert_eq!(enc.labels[i], TWO_TURN_IDS[i] as i64, "label {i}");
    }
    let tok = stories();
    let decode = |r: std::ops::Range<usize>| tok.decode(&TWO_TURN_IDS[r], false).expect("decode");
    assert_eq!(decode(71..83), "Hello!<|im_end|>");
    assert_eq!(decode(125..137), "See you.<|im_end|>");

    // Loss on prompt and response: every label is its token.
    let all = SftEncoder::new(
        stories(),
        Some(template.clone()),
        SftEncoderConfig::default().with_loss_on(LossOn::All),
    )
    .expect("encoder");
    let enc_all = all
        .encode_sample(&Sample::Chat(two_turns()))
        .expect("encode");
    assert_eq!(enc_all.input_ids, TWO_TURN_IDS);
    let ids: Vec<i64> = TWO_TURN_IDS.iter().map(|&t| t as i64).collect();
    assert_eq!(enc_all.labels, ids);

    // Truncation keeps the start and flags it.
    let short = SftEncoder::new(
        stories(),
        Some(template.clone()),
        SftEncoderConfig::default().with_max_len(80),
    )
    .expect("encoder");
    let cut = short
        .encode_sample(&Sample::Chat(two_turns()))
        .expect("encode");
    assert!(cut.truncated);
    assert_eq!(cut.input_ids, TWO_TURN_IDS[..80]);
    assert_eq!(cut.labels, enc.labels[..80]);

    // The generation prompt: everything up to the second answer, no targets.
    let mut first = two_turns();
    first.messages.pop();
    let prompt = encoder.encode_prompt(&first).expect("prompt");
    assert_eq!(prompt.input_ids, TWO_TURN_IDS[..125]);
    assert!(!prompt.has_targets());
}

#[test]
fn masks_follow_byte_offsets_through_non_ascii_text() {
    // Multi-byte text before and inside the answers (byte-fallback tokens for the emoji): the
    // target tokens must still be exactly the answers and their <|im_end|>.
    let template = ChatTemplate::new(CHATML, "<s>", "</s>", "test ChatML").expect("compiles");
    let encoder =
        SftEncoder::new(stories(), Some(template), SftEncoderConfig::default()).expect("encoder");
    let answers = ["Café — ünïcode 🙂", "Ja, grüß dich."];
    let conv = chat(&[
        (Role::User, "Grüße 🙂 aus Köln"),
        (Role::Assistant, answers[0]),
        (Role::User, "Noch einmal?"),
        (Role::Assistant, answers[1]),
    ]);
    let enc = encoder.encode_sample(&conv).expect("encode");
    let mut runs: Vec<Vec<u32>> = Vec::new();
    let mut prev_target = false;
    for (&id, &label) in enc.input_ids.iter().zip(&enc.labels) {
        let target = label != IGNORE_INDEX;
        if target && !prev_target {
            runs.push(Vec::new());
        }
        if target {
            runs.last_mut().expect("run").push(id);
        }
        prev_target = target;
    }
    let tok = stories();
    let decoded: Vec<String> = runs
        .iter()
        .map(|ids| tok.decode(ids, false).expect("decode"))
        .collect();
    assert_eq!(
        decoded,
        answers.map(|a| format!("{a}<|im_end|>")),
        "target runs decode to the answers"
    );
}

#[test]
fn smollm2_template_renders_the_golden_chat_text() {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::shared().join("golden/MANIFEST_FAMILIES.json")).expect("manifest"),
    )
    .expect("json");
    let golden = manifest["files"]["smollm2_gguf_forward"]["chat_text"]
        .as_str()
        .expect("chat_text");
    let template = ChatTemplate::new(
        SMOLLM2_TEMPLATE,
        "<|im_start|>",
        "<|im_end|>",
        "SmolLM2 GGUF",
    )
    .expect("compiles");
    let user = [Message::new(Role::User, "What is the capital of France?")];
    assert_eq!(template.render(&user, true).expect("render"), golden);

    // With the golden greedy answer as the assistant turn, the target is the answer and
    // <|im_end|>; the default system prompt the template adds stays out of the loss.
    let answer = "The capital of France is Paris.";
    let conv = Conversation::single_turn(user[0].content.clone(), answer);
    let rendered = template.render_with_targets(&conv).expect("render");
    assert_eq!(rendered.text, format!("{golden}{answer}<|im_end|>\n"));
    let start = golden.len();
    assert_eq!(rendered.targets, vec![start..start + answer.len() + 10]);
    assert_eq!(
        &rendered.text[rendered.targets[0].clone()],
        "The capital of France is Paris.<|im_end|>"
    );
}

#[test]
fn raise_exception_and_unusable_templates() {
    let strict_roles = "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";
    let template = ChatTemplate::new(strict_roles, "", "", "strict roles").expect("compiles");
    let bad = chat(&[(Role::Assistant, "a"), (Role::User, "u")]);
    let encoder =
        SftEncoder::new(stories(), Some(template), SftEncoderConfig::default()).expect("encoder");
    let record = SftRecord {
        sample: bad,
        path: std::path::Path::new("data.jsonl").into(),
        line: 4,
    };
    let err = encoder.encode(&record).unwrap_err();
    assert_eq!(
        err.to_string(),
        "data.jsonl:4: chat template (strict roles): the template raised: Conversation roles \
         must alternate user/assistant/user/assistant/..."
    );
    let ok = encoder
        .encode_sample(&chat(&[(Role::User, "u"), (Role::Assistant, "a")]))
        .expect("alternating");
    assert!(ok.has_targets());

    let err = ChatTemplate::new("{% for m in messages %}", "", "", "broken").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("chat template (broken): does not compile: syntax error"),
        "{err}"
    );

    // A template that renders only the last message cannot be split into turns.
    let last_only = "{{ messages[-1]['content'] }}";
    let template = ChatTemplate::new(last_only, "", "", "last only").expect("compiles");
    let err = template
        .render_with_targets(&Conversation::new(vec![
            Message::new(Role::User, "question"),
            Message::new(Role::Assistant, "answer"),
        ]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "chat template (last only): rendering the first 1 messages and the generation prompt \
         is not a prefix of rendering the whole conversation (they differ from byte 0: \
         \"question\" vs \"answer\"), so the assistant turns cannot be located for the loss mask"
    );
}

#[test]
fn templates_come_from_tokenizer_config() {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("tokenizer_config.json");
    let write = |json: serde_json::Value| std::fs::write(&cfg, json.to_string()).expect("write");
    let conv = [Message::new(Role::User, "x")];

    write(serde_json::json!({
        "bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"},
        "eos_token": "</s>",
        "chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"
    }));
    let t = ChatTemplate::from_tokenizer_config(&cfg)
        .expect("ok")
        .expect("has one");
    assert_eq!((t.bos_token(), t.eos_token()), ("<s>", "</s>"));
    assert_eq!(t.render(&conv, false).expect("render"), "<s>x</s>");

    write(serde_json::json!({
        "chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "default {{ messages | length }}"}
        ]
    }));
    let t = ChatTemplate::from_tokenizer_config(&cfg)
        .expect("ok")
        .expect("has one");
    assert_eq!(t.render(&conv, false).expect("render"), "default 1");

    write(serde_json::json!({"chat_template": [{"name": "rag", "template": "r"}]}));
    let err = ChatTemplate::from_tokenizer_config(&cfg).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "chat template ({}): `chat_template` lists no template named `default` (found `rag`)",
            cfg.display()
        )
    );
    write(serde_json::json!({"chat_template": 3}));
    let err = ChatTemplate::from_tokenizer_config(&cfg).unwrap_err();
    assert!(err.to_string().ends_with(
        "`chat_template`: expected a string or a list of {name, template}, found number 3"
    ));

    // No template in the config: a chat_template.jinja beside it, else none (a base model).
    write(serde_json::json!({"eos_token": "</s>"}));
    assert!(ChatTemplate::from_tokenizer_config(&cfg)
        .expect("ok")
        .is_none());
    std::fs::write(dir.path().join("chat_template.jinja"), "J{{ eos_token }}\n").expect("write");
    let t = ChatTemplate::from_tokenizer_config(&cfg)
        .expect("ok")
        .expect("from .jinja");
    assert_eq!(t.render(&conv, false).expect("render"), "J</s>");

    // stories260K is a base model: no template.
    let stories_cfg = common::shared().join("models/stories260K/tokenizer_config.json");
    assert!(ChatTemplate::from_tokenizer_config(&stories_cfg)
        .expect("ok")
        .is_none());
}

#[test]
fn alpaca_fallback_is_todays_causal_lm_encoding() {
    // MetaMathQA rows through the new loader and the Alpaca fallback give exactly the ids and
    // labels of CausalLmBatcher::encode(SftExample::from_metamath(..)).
    let root = common::data_root();
    let path = root.file(METAMATHQA_SAMPLE).expect("sample");
    let records = load_sft_file(&path, SftFormat::Auto, &FieldMap::new(), &strict())
        .expect("sft load")
        .into_examples();
    let old = data::metamath::load_metamathqa(&root, METAMATHQA_SAMPLE, &strict()).expect("old");
    let encoder = SftEncoder::new(
        stories(),
        None,
        SftEncoderConfig::default().with_max_len(512),
    )
    .expect("encoder");
    let batcher = CausalLmBatcher::new(stories(), CausalLmBatcherConfig::default()).expect("lm");
    assert_eq!(records.len(), 6);
    for (record, row) in records.iter().zip(old.examples()) {
        let want = batcher
            .encode(&SftExample::from_metamath(row))
            .expect("old encode");
        assert_eq!(
            encoder.encode(record).expect("new encode"),
            want,
            "line {}",
            record.line
        );
    }

    // Two turns and a system message: each pair is its own Alpaca block after one BOS.
    let tok = stories();
    let ids = |t: &str| tok.encode_fast(t, false).expect("enc").get_ids().to_vec();
    let conv = chat(&[
        (Role::System, "Be brief."),
        (Role::User, "A?"),
        (Role::Assistant, "a"),
        (Role::User, "B?"),
        (Role::Assistant, "b"),
    ]);
    let enc = encoder.encode_sample(&conv).expect("encode");
    let block = |q: &str| format!("Be brief.\n\n### Instruction:\n{q}\n\n### Response:");
    let (p1, r1, p2, r2) = (ids(&block("A?")), ids("a"), ids(&block("B?")), ids("b"));
    let want_ids: Vec<u32> = [
        vec![1],
        p1.clone(),
        r1.clone(),
        vec![2],
        p2.clone(),
        r2.clone(),
        vec![2],
    ]
    .concat();
    assert_eq!(enc.input_ids, want_ids);
    let ignore = |n: usize| vec![IGNORE_INDEX; n];
    let lab = |v: &[u32]| v.iter().map(|&t| t as i64).collect::<Vec<_>>();
    let want_labels = [
        ignore(1 + p1.len()),
        lab(&r1),
        vec![2],
        ignore(p2.len()),
        lab(&r2),
        vec![2],
    ]
    .concat();
    assert_eq!(enc.labels, want_labels);

    let err = encoder
        .encode_sample(&chat(&[
            (Role::User, "a"),
            (Role::User, "b"),
            (Role::Assistant, "c"),
        ]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid conversation: the Alpaca prompt (the model has no chat template) needs \
         [system] user assistant [user assistant …]; turn pair 1 breaks it in [user, user, \
         assistant]"
    );
}

#[test]
fn completion_and_text_samples() {
    let encoder = SftEncoder::new(stories(), None, SftEncoderConfig::default()).expect("encoder");
    let tok = stories();
    let ids = |t: &str| tok.encode_fast(t, false).expect("enc").get_ids().to_vec();
    let enc = encoder
        .encode_sample(&Sample::Completion {
            prompt: "Once upon".into(),
            completion: "a time".into(),
        })
        .expect("completion");
    let (p, c) = (ids("Once upon"), ids("a time"));
    assert_eq!(
        enc.input_ids,
        [vec![1], p.clone(), c.clone(), vec![2]].concat()
    );
    let mut want = vec![IGNORE_INDEX; 1 + p.len()];
    want.extend(c.iter().map(|&t| t as i64));
    want.push(2);
    assert_eq!(enc.labels, want);

    let enc = encoder
        .encode_sample(&Sample::Text("Once upon a time".into()))
        .expect("text");
    let t = ids("Once upon a time");
    assert_eq!(enc.input_ids, [vec![1], t.clone(), vec![2]].concat());
    assert_eq!(enc.labels[0], IGNORE_INDEX);
    assert_eq!(
        enc.labels[1..],
        enc.input_ids[1..]
            .iter()
            .map(|&t| t as i64)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// Packing

/// Example `e` of length `len`: ids `1000 e + p`, labels ignored on the first half.
fn synthetic(e: usize, len: usize) -> EncodedSequence {
    let input_ids: Vec<u32> = (0..len).map(|p| (1000 * e + p) as u32).collect();
    let labels = input_ids
        .iter()
        .enumerate()
        .map(|(p, &t)| if p < len / 2 { IGNORE_INDEX } else { t as i64 })
        .collect();
    EncodedSequence {
        input_ids,
        labels,
        truncated: false,
    }
}

#[test]
fn packing_places_every_token_once_and_restarts_positions() {
    let max = 16;
    let lens = [5, 11, 3, 16, 1, 7, 9, 20, 2, 8, 0, 4, 13, 6];
    let items: Vec<EncodedSequence> = lens
        .iter()
        .enumerate()
        .map(|(e, &l)| synthetic(e, l))
        .collect();
    for strategy in [
        PackingStrategy::Sequential,
        PackingStrategy::BestFitDecreasing,
    ] {
        let packer =
            PackedBatcher::new(PackingConfig::new(max).with_strategy(strategy)).expect("packer");
        let packed = packer.pack(&items);
        let report = &packed.report;
        assert_eq!(
            report.truncated, 1,
            "{strategy:?}: the 20-token example is cut"
        );
        assert_eq!(
            report.empty, 1,
            "{strategy:?}: the empty example is left out"
        );
        assert_eq!(report.examples, lens.len() - 1);
        let placed: usize = lens.iter().map(|&l| l.min(max)).sum();
        assert_eq!(report.tokens, placed);
        assert_eq!(report.rows, packed.rows.len());

        let mut seen = HashSet::new();
        let mut examples_seen = HashSet::new();
        for row in &packed.rows {
            assert!(row.input_ids.len() <= max);
            let n = row.input_ids.len();
            assert!(
                row.labels.len() == n && row.position_ids.len() == n && row.segment_ids.len() == n
            );
            // Segments are 1, 2, … in order, each one whole example, contiguous.
            let mut start = 0;
            for (s, &e) in row.examples.iter().enumerate() {
                assert!(examples_seen.insert(e), "example {e} in two rows");
                let len = lens[e].min(max);
                let seg = start..start + len;
                assert!(row.segment_ids[seg.clone()]
                    .iter()
                    .all(|&id| id == s as u32 + 1));
                assert_eq!(
                    row.position_ids[seg.clone()],
                    (0..len as u32).collect::<Vec<_>>()
                );
                assert_eq!(row.input_ids[seg.clone()], items[e].input_ids[..len]);
                // Labels: the example's own, but never at its first position.
                assert_eq!(row.labels[start], IGNORE_INDEX);
                assert_eq!(row.labels[start + 1..seg.end], items[e].labels[1..len]);
                for &t in &row.input_ids[seg.clone()] {
                    assert!(seen.insert(t), "token {t} placed twice");
                }
                start = seg.end;
            }
            assert_eq!(start, n, "no token outside a segment");
        }
        assert_eq!(
            seen.len(),
            placed,
            "{strategy:?}: every token placed exactly once"
        );
        if strategy == PackingStrategy::Sequential {
            let order: Vec<usize> = packed
                .rows
                .iter()
                .flat_map(|r| r.examples.clone())
                .collect();
            let want: Vec<usize> = (0..lens.len()).filter(|&e| lens[e] > 0).collect();
            assert_eq!(order, want, "sequential keeps the order");
            // 5+11 | 3 | 16 | 1+7 | 9 | 16 (cut) | 2+8+4 | 13 | 6
            let sizes: Vec<usize> = packed.rows.iter().map(|r| r.input_ids.len()).collect();
            assert_eq!(sizes, [16, 3, 16, 8, 9, 16, 14, 13, 6]);
        } else {
            // 16 | 16 | 13+3 | 11+5 | 9+7 | 8+6+2 | 4+1
            assert_eq!(packed.rows.len(), 7);
            assert!(packed.report.fill(max) > 0.9);
        }
    }
    let err = PackedBatcher::new(PackingConfig::new(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid max_seq_len: expected at least 1, found 0"
    );
}

#[test]
fn packed_batches_from_chat_records() {
    let template = ChatTemplate::new(CHATML, "<s>", "</s>", "test ChatML").expect("compiles");
    let encoder = SftEncoder::new(
        stories(),
        Some(template),
        SftEncoderConfig::default().with_max_len(64),
    )
    .expect("encoder");
    let samples = [
        chat(&[(Role::User, "Hi"), (Role::Assistant, "Yo")]),
        Sample::Text("Once upon a time".into()),
        chat(&[(Role::User, "A"), (Role::Assistant, "B")]),
    ];
    let encoded: Vec<EncodedSequence> = samples
        .iter()
        .map(|s| encoder.encode_sample(s).expect("encode"))
        .collect();
    let lens: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
    let max = lens[0] + lens[1];
    let packer = PackedBatcher::new(PackingConfig::new(max).with_pad_id(0)).expect("packer");
    let packed = packer.pack(&encoded);
    assert_eq!(packed.rows.len(), 2);
    let batch: PackedBatch<B> = burn::data::dataloader::batcher::Batcher::batch(
        &packer,
        packed.rows.clone(),
        &Default::default(),
    );
    assert_eq!(batch.input_ids.dims(), [2, max]);
    let seg = rows(batch.segment_ids);
    let pos = rows(batch.position_ids);
    let mask = rows(batch.attention_mask);
    let labels = rows(batch.labels);
    let ids = rows(batch.input_ids);
    let (a, b, c) = (lens[0], lens[1], lens[2]);
    assert_eq!(seg[0], [vec![1; a], vec![2; b]].concat());
    assert_eq!(seg[1], [vec![1; c], vec![0; max - c]].concat());
    assert_eq!(
        pos[0],
        [(0..a as i64).collect::<Vec<_>>(), (0..b as i64).collect()].concat()
    );
    assert_eq!(mask[1], [vec![1; c], vec![0; max - c]].concat());
    assert_eq!(ids[1][c..], vec![0; max - c]);
    assert_eq!(labels[1][c..], vec![IGNORE_INDEX; max - c]);
    // The text example's first token (BOS) and the chat example's prompt are ignored; the
    // text tokens after BOS and the chat answers carry loss.
    assert_eq!(labels[0][a], IGNORE_INDEX);
    assert_eq!(labels[0][a + 1..], encoded[1].labels[1..]);
    assert_eq!(labels[0][..a], encoded[0].labels[..]);

    // Through Burn's data loader, one row per batch.
    let loader = DataLoaderBuilder::<B, _, _>::new(packer.clone())
        .batch_size(1)
        .build(InMemDataset::new(packed.rows.clone()));
    let got: Vec<Vec<Vec<i64>>> = loader.iter().map(|b| rows(b.input_ids)).collect();
    let want: Vec<Vec<Vec<i64>>> = packed
        .rows
        .iter()
        .map(|r| vec![r.input_ids.iter().map(|&t| t as i64).collect()])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn encoders_and_packers_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<SftEncoder>();
    send_sync::<ChatTemplate>();
    send_sync::<PackedBatcher>();
    send_sync::<SftRecord>();
}
