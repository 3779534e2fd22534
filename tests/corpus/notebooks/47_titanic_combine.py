# Kaggle-tutorial feature engineering: train and test changed together through `for dataset in combine`.
# %%
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
# %%
rng = np.random.default_rng(7)
n = 60
names = [f"{t} {s}" for t, s in zip(rng.choice(["Mr.", "Mrs.", "Miss.", "Master.", "Dr."], n),
                                    rng.choice(["Smith", "Jones", "Brown"], n))]
full = pd.DataFrame({
    "Name": names,
    "Sex": rng.choice(["male", "female"], n),
    "Age": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 70, n).astype(float)),
    "SibSp": rng.integers(0, 4, n),
    "Parch": rng.integers(0, 3, n),
    "Fare": rng.random(n) * 80,
    "Embarked": rng.choice(["S", "C", "Q", None], n),
    "Survived": rng.integers(0, 2, n),
})
train_df = full.iloc[:45].copy()
test_df = full.iloc[45:].drop(columns="Survived").copy()
combine = [train_df, test_df]
# %%
for dataset in combine:
    dataset["Title"] = dataset["Name"].str.extract(r"^(\w+)\.", expand=False)
    dataset["Title"] = dataset["Title"].replace(["Dr", "Master"], "Rare")
title_mapping = {"Mr": 1, "Miss": 2, "Mrs": 3, "Rare": 4}
for dataset in combine:
    dataset["Title"] = dataset["Title"].map(title_mapping).fillna(0).astype(int)
# %%
for dataset in combine:
    dataset["Sex"] = dataset["Sex"].map({"female": 1, "male": 0}).astype(int)
    dataset["Age"] = dataset["Age"].fillna(dataset["Age"].median())
    dataset["FamilySize"] = dataset["SibSp"] + dataset["Parch"] + 1
    dataset.loc[dataset["FamilySize"] == 1, "IsAlone"] = 1
    dataset["IsAlone"] = dataset["IsAlone"].fillna(0).astype(int)
# %%
freq_port = train_df["Embarked"].dropna().mode()[0]
for dataset in combine:
    dataset["Embarked"] = dataset["Embarked"].fillna(freq_port).map({"S": 0, "C": 1, "Q": 2}).astype(int)
    dataset.drop(columns=["Name", "SibSp", "Parch"], inplace=True)
# %%
features = ["Sex", "Age", "Fare", "Embarked", "Title", "FamilySize", "IsAlone"]
X_train = train_df[features]
Y_train = train_df["Survived"]
X_test = test_df[features].copy()
logreg = LogisticRegression(max_iter=500)
logreg.fit(X_train, Y_train)
acc_log = round(logreg.score(X_train, Y_train) * 100, 2)
# %%
Y_pred = logreg.predict(X_test)
submission = pd.DataFrame({"row": test_df.index, "Survived": Y_pred})
coef = pd.DataFrame({"Feature": features, "Correlation": logreg.coef_[0].round(6)})
