//! The network's evaluation graph, layer by layer, as ONNX nodes and initializers.

use std::collections::HashMap;

use cnn_models::{Activation, Cnn, LayerSpec, Tensor};
use prost::Message;

use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::type_proto;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::{Error, Result};

/// The ONNX operator set the graph uses.
pub const OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;
/// PyTorch's `BatchNorm2d` epsilon, which the networks use.
const BN_EPS: f32 = 1e-5;

/// The network as an ONNX model file's bytes (see the crate documentation for the contract).
pub fn to_onnx(model: &Cnn) -> Result<Vec<u8>> {
    let spec = model.spec();
    let mut g = Builder::new(model);
    let mut flat = false;
    let (mut convs, mut bns, mut fcs) = (0, 0, 0);
    for layer in &spec.layers {
        match layer {
            LayerSpec::Conv(c) => {
                convs += 1;
                let (k, s, p) = (c.kernel as i64, c.stride as i64, c.pad() as i64);
                let w = g.init(&format!("conv{convs}.weight"))?;
                let b = g.init(&format!("conv{convs}.bias"))?;
                let attrs = vec![
                    ints("kernel_shape", &[k, k]),
                    ints("strides", &[s, s]),
                    ints("pads", &[p, p, p, p]),
                ];
                g.node("Conv", vec![g.current.clone(), w, b], attrs);
                if c.batchnorm {
                    bns += 1;
                    g.batchnorm(bns)?;
                }
                g.activation(c.activation);
            }
            LayerSpec::MaxPool { size } => g.pool("MaxPool", *size),
            LayerSpec::AvgPool { size } => g.pool("AveragePool", *size),
            LayerSpec::GlobalAvgPool => {
                g.node("GlobalAveragePool", vec![g.current.clone()], vec![]);
            }
            LayerSpec::Linear { activation, .. } => {
                fcs += 1;
                g.linear(fcs, &mut flat)?;
                g.activation(*activation);
            }
            // The evaluation graph: dropout is the identity.
            LayerSpec::Dropout { .. } => {}
        }
    }
    g.linear(fcs + 1, &mut flat)?;
    g.finish(model)
}

/// Builds the node list, the initializers and the name of the value so far.
struct Builder<'a> {
    tensors: HashMap<&'a str, &'a Tensor>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    current: String,
}

impl<'a> Builder<'a> {
    fn new(model: &'a Cnn) -> Self {
        Self {
            tensors: model
                .named_tensors()
                .iter()
                .map(|(n, t)| (n.as_str(), t))
                .collect(),
            nodes: Vec::new(),
            inits: Vec::new(),
            current: "input".into(),
        }
    }

    /// Adds node `op` on `inputs`; its output becomes the current value.
    fn node(&mut self, op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![name.clone()],
            name: Some(name.clone()),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
        self.current = name;
    }

    /// The network's tensor `name` as an initializer of that name.
    fn init(&mut self, name: &str) -> Result<String> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensor(name.into()))?;
        let values = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| Error::Tensor {
                name: name.into(),
                source,
            })?;
        let dims = t.dims().iter().map(|&d| d as i64).collect();
        self.inits.push(float_tensor(name, dims, &values));
        Ok(name.into())
    }

    /// A scalar constant, as an initializer.
    fn constant(&mut self, name: &str, value: f32) -> String {
        if !self.inits.iter().any(|t| t.name.as_deref() == Some(name)) {
            self.inits.push(float_tensor(name, Vec::new(), &[value]));
        }
        name.into()
    }

    fn batchnorm(&mut self, k: usize) -> Result<()> {
        let mut inputs = vec![self.current.clone()];
        for leaf in ["weight", "bias", "running_mean", "running_var"] {
            inputs.push(self.init(&format!("bn{k}.{leaf}"))?);
        }
        self.node("BatchNormalization", inputs, vec![float("epsilon", BN_EPS)]);
        Ok(())
    }

    fn pool(&mut self, op: &str, size: usize) {
        let k = size as i64;
        let attrs = vec![ints("kernel_shape", &[k, k]), ints("strides", &[k, k])];
        self.node(op, vec![self.current.clone()], attrs);
    }

    /// `fcK` as `Gemm` (weights `[out, in]`, as PyTorch's), flattening the maps first.
    fn linear(&mut self, k: usize, flat: &mut bool) -> Result<()> {
        if !*flat {
            self.node("Flatten", vec![self.current.clone()], vec![int("axis", 1)]);
            *flat = true;
        }
        let w = self.init(&format!("fc{k}.weight"))?;
        let b = self.init(&format!("fc{k}.bias"))?;
        self.node(
            "Gemm",
            vec![self.current.clone(), w, b],
            vec![int("transB", 1)],
        );
        Ok(())
    }

    /// The activation; GELU (erf form) and SiLU in opset-17 operators.
    fn activation(&mut self, act: Activation) {
        let x = self.current.clone();
        match act {
            Activation::Relu => self.node("Relu", vec![x], vec![]),
            Activation::Tanh => self.node("Tanh", vec![x], vec![]),
            Activation::Silu => {
                self.node("Sigmoid", vec![x.clone()], vec![]);
                self.node("Mul", vec![x, self.current.clone()], vec![]);
            }
            Activation::Gelu => {
                // x * (1 + erf(x / sqrt 2)) / 2
                let sqrt2 = self.constant("const_sqrt2", std::f32::consts::SQRT_2);
                let one = self.constant("const_one", 1.0);
                let half = self.constant("const_half", 0.5);
                self.node("Div", vec![x.clone(), sqrt2], vec![]);
                self.node("Erf", vec![self.current.clone()], vec![]);
                self.node("Add", vec![self.current.clone(), one], vec![]);
                self.node("Mul", vec![x, self.current.clone()], vec![]);
                self.node("Mul", vec![self.current.clone(), half], vec![]);
            }
            Activation::None => {}
        }
    }

    /// The model: the graph ending in `logits`, with its input and output and metadata.
    fn finish(mut self, model: &Cnn) -> Result<Vec<u8>> {
        if let Some(last) = self.nodes.last_mut() {
            last.output = vec!["logits".into()];
        }
        let [c, h, w] = model.input_shape();
        let batch = || Dimension {
            value: Some(dimension::Value::DimParam("N".into())),
            ..Default::default()
        };
        let input = value_info("input", vec![batch(), dim(c), dim(h), dim(w)]);
        let output = value_info("logits", vec![batch(), dim(model.classes())]);
        let spec = serde_json::to_string(model.spec()).map_err(Error::Spec)?;
        let names = serde_json::to_string(model.class_names()).map_err(Error::Spec)?;
        let meta = [
            (
                "pixel_scale",
                "input = pixel value / 255 (0-255 pixels, 0 the background)",
            ),
            ("class_names", names.as_str()),
            ("spec", spec.as_str()),
        ];
        let model_proto = ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            }],
            producer_name: Some("cnn-mnist".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some(model.spec().name.clone()),
                initializer: self.inits,
                input: vec![input],
                output: vec![output],
                ..Default::default()
            }),
            metadata_props: meta
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some((*k).into()),
                    value: Some((*v).into()),
                })
                .collect(),
            ..Default::default()
        };
        Ok(model_proto.encode_to_vec())
    }
}

fn float_tensor(name: &str, dims: Vec<i64>, values: &[f32]) -> TensorProto {
    TensorProto {
        dims,
        data_type: Some(DataType::Float as i32),
        name: Some(name.into()),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn dim(n: usize) -> Dimension {
    Dimension {
        value: Some(dimension::Value::DimValue(n as i64)),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}
