//! Endpoint filters: which events an endpoint gets, by what their version-1 call body says.
//!
//! A filter is a JSON object. Each key is a dotted path into the body (`"data.to.name"`)
//! whose value is either a value the body must hold there, or an object of operators
//! (`$in`, `$nin`, `$ne`, `$exists`, `$gt`, `$gte`, `$lt`, `$lte`); `"$or"` and `"$and"` take
//! lists of filters. Keys are ANDed. A filter is parsed once, when the endpoint is saved, into
//! a [`Filter`] that is quick to test against each event's body.

use serde_json::Value;

use super::Invalid;

/// The most conditions one filter holds, and how deep `$or`/`$and` nest: every event of the
/// account is tested against it.
const MAX_CONDITIONS: usize = 100;
const MAX_DEPTH: usize = 5;

/// A parsed filter: all of its clauses must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Vec<Clause>);

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    /// The value at a path meets every condition.
    At(Vec<String>, Vec<Condition>),
    Or(Vec<Filter>),
    And(Vec<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Compare(Order, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Filter {
    /// Parses a filter, or says which path of it is wrong (`filter.data.to.name: …`).
    pub fn parse(value: &Value) -> Result<Filter, Invalid> {
        let mut budget = MAX_CONDITIONS;
        parse_filter(value, "filter", 0, &mut budget)
    }

    /// Whether an event's version-1 call body passes the filter.
    pub fn matches(&self, body: &Value) -> bool {
        self.0.iter().all(|clause| match clause {
            Clause::At(path, conditions) => {
                let found = resolve(body, path);
                conditions.iter().all(|c| c.holds(found))
            }
            Clause::Or(filters) => filters.iter().any(|f| f.matches(body)),
            Clause::And(filters) => filters.iter().all(|f| f.matches(body)),
        })
    }
}

fn invalid(at: &str, problem: &str) -> Invalid {
    Invalid {
        code: "invalid_filter",
        message: format!("{at}: {problem}"),
    }
}

fn parse_filter(value: &Value, at: &str, depth: usize, budget: &mut usize) -> Result<Filter, Invalid> {
    let Value::Object(object) = value else {
        return Err(invalid(at, "a filter is an object of paths and conditions"));
    };
    if depth > MAX_DEPTH {
        return Err(invalid(at, &format!("$or and $and nest at most {MAX_DEPTH} deep")));
    }
    let mut clauses = Vec::with_capacity(object.len());
    for (key, value) in object {
        let here = format!("{at}.{key}");
        let clause = match key.as_str() {
            "$or" | "$and" => {
                let Some(list) = value.as_array().filter(|l| !l.is_empty()) else {
                    return Err(invalid(&here, "takes a non-empty list of filters"));
                };
                let filters = list
                    .iter()
                    .enumerate()
                    .map(|(i, f)| parse_filter(f, &format!("{here}[{i}]"), depth + 1, budget))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "$or" {
                    Clause::Or(filters)
                } else {
                    Clause::And(filters)
                }
            }
            operator if operator.starts_with('$') => {
                return Err(invalid(&here, "at the top of a filter only $or and $and are operators"));
            }
            path => Clause::At(parse_path(path, &here)?, parse_conditions(value, &here)?),
        };
        if let Clause::At(_, conditions) = &clause {
            *budget = budget
                .checked_sub(conditions.len())
                .ok_or_else(|| invalid(at, &format!("a filter holds at most {MAX_CONDITIONS} conditions")))?;
        }
        clauses.push(clause);
    }
    Ok(Filter(clauses))
}

fn parse_path(path: &str, at: &str) -> Result<Vec<String>, Invalid> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if path.len() > 256 || segments.iter().any(String::is_empty) {
        return Err(invalid(at, "a path is names joined by dots, such as data.to.name"));
    }
    Ok(segments)
}

/// A value to compare with, or an object of operators (every key a `$` one).
fn parse_conditions(value: &Value, at: &str) -> Result<Vec<Condition>, Invalid> {
    let Some(operators) = value.as_object().filter(|o| o.keys().any(|k| k.starts_with('$'))) else {
        return Ok(vec![Condition::Eq(value.clone())]);
    };
    operators
        .iter()
        .map(|(operator, operand)| parse_condition(operator, operand, &format!("{at}.{operator}")))
        .collect()
}

fn parse_condition(operator: &str, operand: &Value, at: &str) -> Result<Condition, Invalid> {
    let number = || operand.as_f64().ok_or_else(|| invalid(at, "takes a number"));
    let list = || {
        operand
            .as_array()
            .cloned()
            .ok_or_else(|| invalid(at, "takes a list of values"))
    };
    Ok(match operator {
        "$ne" => Condition::Ne(operand.clone()),
        "$in" => Condition::In(list()?),
        "$nin" => Condition::Nin(list()?),
        "$exists" => Condition::Exists(operand.as_bool().ok_or_else(|| invalid(at, "takes true or false"))?),
        "$gt" => Condition::Compare(Order::Gt, number()?),
        "$gte" => Condition::Compare(Order::Gte, number()?),
        "$lt" => Condition::Compare(Order::Lt, number()?),
        "$lte" => Condition::Compare(Order::Lte, number()?),
        _ => {
            return Err(invalid(
                at,
                "unknown operator; use $in, $nin, $ne, $exists, $gt, $gte, $lt or $lte (or give the value itself)",
            ));
        }
    })
}

/// The value at `path` in `body`; an array takes a number as an index.
fn resolve<'a>(body: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(body, |value, segment| match value {
        Value::Object(object) => object.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// JSON equality, with numbers equal by value (`1` and `1.0` are one number).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

impl Condition {
    fn holds(&self, found: Option<&Value>) -> bool {
        match self {
            Condition::Eq(v) => found.is_some_and(|f| same(f, v)),
            Condition::Ne(v) => !found.is_some_and(|f| same(f, v)),
            Condition::In(vs) => found.is_some_and(|f| vs.iter().any(|v| same(f, v))),
            Condition::Nin(vs) => !found.is_some_and(|f| vs.iter().any(|v| same(f, v))),
            Condition::Exists(wanted) => found.is_some() == *wanted,
            Condition::Compare(order, bound) => found.and_then(Value::as_f64).is_some_and(|n| match order {
                Order::Gt => n > *bound,
                Order::Gte => n >= *bound,
                Order::Lt => n < *bound,
                Order::Lte => n <= *bound,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn body() -> Value {
        json!({"id": "evt_1", "event": "ProcessStepChange", "datetime": "2021-04-01 12:13:14",
               "application": {"_self": "/restapi/v1/application/42"},
               "data": {"from": {"id": 1, "name": "Screening"}, "to": {"id": 2, "name": "Offer"},
                        "score": 7.5, "tags": ["a", "b"]}})
    }

    fn passes(filter: &Value) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&body())
    }

    #[test]
    fn the_specs_example_and_each_operator() {
        assert!(passes(
            &json!({"event": "ProcessStepChange", "data.to.name": {"$in": ["Offer", "Hired"]}})
        ));
        assert!(!passes(
            &json!({"event": "ProcessStepChange", "data.to.name": {"$in": ["Hired"]}})
        ));
        let table = [
            (json!({"data.to.id": 2}), true),
            (json!({"data.to.id": 2.0}), true),
            (json!({"data.to.id": "2"}), false),
            (json!({"data.to": {"id": 2, "name": "Offer"}}), true),
            (json!({"data.to.name": {"$ne": "Offer"}}), false),
            (json!({"data.missing": {"$ne": "x"}}), true),
            (json!({"data.to.name": {"$nin": ["Hired", "Rejected"]}}), true),
            (json!({"data.missing": {"$exists": false}}), true),
            (json!({"application._self": {"$exists": true}}), true),
            (json!({"data.score": {"$gt": 7, "$lte": 7.5}}), true),
            (json!({"data.score": {"$gte": 8}}), false),
            (json!({"data.to.name": {"$lt": 3}}), false),
            (json!({"data.tags.1": "b"}), true),
            (json!({"$or": [{"data.to.id": 9}, {"data.from.id": 1}]}), true),
            (json!({"$and": [{"data.to.id": 2}, {"data.from.id": 9}]}), false),
            (json!({}), true),
        ];
        for (filter, expected) in table {
            assert_eq!(passes(&filter), expected, "{filter}");
        }
    }

    #[test]
    fn a_filter_that_cannot_be_parsed_names_its_path() {
        let table = [
            (json!([]), "filter:"),
            (json!({"data.to.name": {"$in": "Offer"}}), "filter.data.to.name.$in:"),
            (json!({"data.score": {"$gt": "7"}}), "filter.data.score.$gt:"),
            (json!({"data.x": {"$exists": 1}}), "filter.data.x.$exists:"),
            (json!({"data.x": {"$regex": "a"}}), "filter.data.x.$regex:"),
            (json!({"$not": {}}), "filter.$not:"),
            (json!({"$or": []}), "filter.$or:"),
            (json!({"$or": [{"a": 1}, 3]}), "filter.$or[1]:"),
            (json!({"data..to": 1}), "filter.data..to:"),
        ];
        for (filter, at) in table {
            let error = Filter::parse(&filter).unwrap_err();
            assert_eq!(error.code, "invalid_filter");
            assert!(error.message.starts_with(at), "{filter}: {}", error.message);
        }
        let deep = (0..7).fold(json!({"a": 1}), |f, _| json!({"$or": [f]}));
        assert!(Filter::parse(&deep).is_err(), "nesting is bounded");
        let wide: Map<String, Value> = (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(Filter::parse(&Value::Object(wide)).is_err(), "conditions are bounded");
    }

    /// The filter language read straight off the JSON, as the spec words it: slow and plain,
    /// the yardstick for the parsed filter.
    fn reference(filter: &Value, body: &Value) -> bool {
        filter
            .as_object()
            .unwrap()
            .iter()
            .all(|(key, wanted)| match key.as_str() {
                "$or" => wanted.as_array().unwrap().iter().any(|f| reference(f, body)),
                "$and" => wanted.as_array().unwrap().iter().all(|f| reference(f, body)),
                path => {
                    let mut found = Some(body);
                    for segment in path.split('.') {
                        found = match found {
                            Some(Value::Object(o)) => o.get(segment),
                            Some(Value::Array(a)) => segment.parse::<usize>().ok().and_then(|i| a.get(i)),
                            _ => None,
                        };
                    }
                    let equal = |a: &Value, b: &Value| canonical(a) == canonical(b);
                    let is_operators = wanted.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with('$')));
                    if !is_operators {
                        return found.is_some_and(|f| equal(f, wanted));
                    }
                    wanted.as_object().unwrap().iter().all(|(op, arg)| {
                        let number = found.and_then(Value::as_f64);
                        match op.as_str() {
                            "$ne" => !found.is_some_and(|f| equal(f, arg)),
                            "$in" => found.is_some_and(|f| arg.as_array().unwrap().iter().any(|a| equal(f, a))),
                            "$nin" => !found.is_some_and(|f| arg.as_array().unwrap().iter().any(|a| equal(f, a))),
                            "$exists" => found.is_some() == arg.as_bool().unwrap(),
                            "$gt" => number.is_some_and(|n| n > arg.as_f64().unwrap()),
                            "$gte" => number.is_some_and(|n| n >= arg.as_f64().unwrap()),
                            "$lt" => number.is_some_and(|n| n < arg.as_f64().unwrap()),
                            "$lte" => number.is_some_and(|n| n <= arg.as_f64().unwrap()),
                            _ => unreachable!(),
                        }
                    })
                }
            })
    }

    /// A value with every number written as a float, so that 1 and 1.0 read alike.
    fn canonical(value: &Value) -> String {
        match value {
            Value::Number(n) => format!("{:?}", n.as_f64().unwrap()),
            Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
            Value::Object(o) => {
                let mut keys: Vec<_> = o.iter().map(|(k, v)| format!("{k:?}:{}", canonical(v))).collect();
                keys.sort();
                format!("{{{}}}", keys.join(","))
            }
            other => other.to_string(),
        }
    }

    /// A small deterministic generator (xorshift), so a failure can be replayed.
    struct Draw(u64);

    impl Draw {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn leaf(&mut self) -> Value {
            [
                json!(0),
                json!(1),
                json!(1.0),
                json!(2.5),
                json!("x"),
                json!("y"),
                json!(true),
                Value::Null,
            ][self.below(8)]
            .clone()
        }

        fn body(&mut self, depth: usize) -> Value {
            match self.below(if depth == 0 { 2 } else { 4 }) {
                0 | 1 => self.leaf(),
                2 => Value::Array((0..self.below(3)).map(|_| self.body(depth - 1)).collect()),
                _ => {
                    let keys = ["a", "b", "c"];
                    Value::Object(
                        (0..self.below(4))
                            .map(|i| (keys[i % 3].to_owned(), self.body(depth - 1)))
                            .collect(),
                    )
                }
            }
        }

        fn filter(&mut self, depth: usize) -> Value {
            let mut filter = Map::new();
            for _ in 0..1 + self.below(3) {
                if depth > 0 && self.below(5) == 0 {
                    let key = ["$or", "$and"][self.below(2)];
                    let list = (0..1 + self.below(3)).map(|_| self.filter(depth - 1)).collect();
                    filter.insert(key.into(), Value::Array(list));
                    continue;
                }
                let path = ["a", "b", "a.b", "a.c", "b.a", "c", "a.0", "b.1.a"][self.below(8)];
                let leaves = |d: &mut Draw| Value::Array((0..d.below(3)).map(|_| d.leaf()).collect());
                let condition = match self.below(9) {
                    0 => self.leaf(),
                    1 => json!({"$ne": self.leaf()}),
                    2 => json!({"$in": leaves(self)}),
                    3 => json!({"$nin": leaves(self)}),
                    4 => json!({"$exists": self.below(2) == 0}),
                    5 => {
                        let bound = [0, 1, 2][self.below(3)];
                        json!({"$gt": bound})
                    }
                    6 => json!({"$gte": 1, "$lt": 2.5}),
                    7 => json!({"$lte": 1}),
                    _ => self.body(1),
                };
                filter.insert(path.into(), condition);
            }
            Value::Object(filter)
        }
    }

    #[test]
    fn the_parsed_filter_agrees_with_the_plain_reading_on_random_bodies() {
        let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
        let (mut passed, mut cases) = (0, 0);
        for _ in 0..20_000 {
            let (filter, body) = (draw.filter(2), draw.body(3));
            let parsed = Filter::parse(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
            let expected = reference(&filter, &body);
            assert_eq!(parsed.matches(&body), expected, "filter {filter} on {body}");
            passed += usize::from(expected);
            cases += 1;
        }
        // Both outcomes are common, or the comparison would prove little.
        assert!(
            passed > cases / 20 && passed < cases * 19 / 20,
            "{passed} of {cases} passed"
        );
    }
}
