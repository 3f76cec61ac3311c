//===- MoeDialect.td - The moe dialect: routed experts -----*- tablegen -*-===//

#ifndef M2C_DIALECTS_MOE_MOEDIALECT_TD
#define M2C_DIALECTS_MOE_MOEDIALECT_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::m2c::moe";
  let summary = "Mixture-of-experts routing and expert computation";
  let description = [{
    The `moe` dialect splits a sparse MoE block in two: `moe.route` chooses
    experts and their weights per token, `moe.experts` runs the selected
    SwiGLU experts and combines their outputs. Keeping them apart lets the
    router be fused with its gate GEMV and the experts be grouped across
    tokens.
  }];
  let useDefaultAttributePrinterParser = 1;
}

def Moe_ScoringFunc : I32EnumAttr<"ScoringFunc", "router scoring function", [
  I32EnumAttrCase<"sigmoid", 0>,
  I32EnumAttrCase<"softmax", 1>
]> {
  let cppNamespace = "::m2c::moe";
  let genSpecializedAttr = 0;
}

def Moe_ScoringFuncAttr : EnumAttr<Moe_Dialect, Moe_ScoringFunc, "scoring"> {
  let assemblyFormat = "`<` $value `>`";
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

#endif // M2C_DIALECTS_MOE_MOEDIALECT_TD
